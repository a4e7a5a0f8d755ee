//! The admin endpoint of meeting mode: `GET /status` (the JSON the main loop keeps current),
//! `GET /metrics`, and the leader's commands, which go to the main loop over a channel.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use keyctl::wire::ParticipantId;
use serde_json::json;

use crate::meeting::{Participant, ParticipantStatus};
use crate::sidecar::metrics::{self, Exposed};
use veil_admin::{Request, Response};

/// A leader command from the admin endpoint to the main loop.
#[derive(Debug)]
pub(super) enum AdminCommand {
    Kick(u32),
    Lock,
    Unlock,
}

/// What the admin thread reads: the last status JSON, kept current by the main loop.
pub(super) type SharedStatus = Arc<Mutex<serde_json::Value>>;

/// Applies the pending leader commands to `participant` (kicks by the slot in `roster`).
pub(super) fn apply_commands(
    commands: &Receiver<AdminCommand>,
    participant: &Participant,
    roster: &[(u32, ParticipantId)],
) {
    while let Ok(command) = commands.try_recv() {
        match command {
            AdminCommand::Kick(slot) => match roster.iter().find(|(s, _)| *s == slot) {
                Some((_, who)) => participant.kick(who),
                None => tracing::warn!(slot, "kick: no participant in that slot"),
            },
            AdminCommand::Lock => participant.lock(),
            AdminCommand::Unlock => participant.unlock(),
        }
    }
}

/// Across sessions: how the sidecar got where it is.
#[derive(Debug, Default)]
pub(super) struct Record {
    /// Sessions begun by a rejoin.
    pub(super) rejoins: u64,
    /// Rejoin attempts started (each a connection to the board).
    pub(super) rejoin_attempts: u64,
    /// Between sessions, waiting for the next rejoin attempt or connecting.
    pub(super) rejoining: bool,
    /// Why the last session ended.
    pub(super) last_end: Option<String>,
    /// Why the sidecar is out of the meeting for good (no rejoin follows).
    pub(super) ended: Option<String>,
}

/// `/status`: the current session's status (an empty one between sessions), this device's
/// slot, the rejoin record, and the packet counters.
pub(super) fn status_json(
    status: &ParticipantStatus,
    slot: Option<u32>,
    record: &Record,
    exposed: &Exposed,
) -> serde_json::Value {
    let totals = exposed.totals();
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(map) = value.as_object_mut() {
        map.insert("sender_slot".into(), json!(slot));
        // The session's own end is the record's: `ended` only once no rejoin follows.
        map.insert("ended".into(), json!(record.ended));
        map.insert("last_end".into(), json!(record.last_end));
        map.insert("rejoins".into(), json!(record.rejoins));
        map.insert("rejoin_attempts".into(), json!(record.rejoin_attempts));
        map.insert("rejoining".into(), json!(record.rejoining));
        map.insert(
            "packets".into(),
            json!({
                "sealed": totals.packets[0],
                "opened": totals.packets[1],
                "sent": totals.sent,
                "drops": dataplane::packet::DropReason::ALL
                    .iter()
                    .map(|r| (r.as_str().to_owned(), json!(totals.drops.get(*r))))
                    .collect::<serde_json::Map<_, _>>(),
                "send_drops": dataplane::batch::SendDrop::ALL
                    .iter()
                    .map(|r| (r.as_str().to_owned(), json!(totals.send_drops[*r as usize])))
                    .collect::<serde_json::Map<_, _>>(),
            }),
        );
    }
    value
}

/// Answers one admin request.
pub(super) fn admin(
    request: &Request,
    exposed: &Exposed,
    status: &SharedStatus,
    commands: &Sender<AdminCommand>,
) -> Response {
    let path = request.path.as_str();
    let command = match (request.method.as_str(), path) {
        ("GET", "/metrics") => return metrics::metrics_response(exposed),
        ("GET", "/status") => {
            let body = status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .to_string();
            return Response::ok("application/json", body);
        }
        ("POST", "/lock") => AdminCommand::Lock,
        ("POST", "/unlock") => AdminCommand::Unlock,
        ("POST", p) if p.starts_with("/kick/") => {
            match p.trim_start_matches("/kick/").parse::<u32>() {
                Ok(slot) => AdminCommand::Kick(slot),
                Err(_) => return Response::text("400 Bad Request", "POST /kick/SLOT\n"),
            }
        }
        _ => {
            return Response::text(
                "404 Not Found",
                "GET /status, GET /metrics, POST /kick/SLOT, POST /lock, POST /unlock\n",
            );
        }
    };
    match commands.send(command) {
        Ok(()) => Response::text(
            "200 OK",
            "sent to the meeting (only the leader can do this)\n",
        ),
        Err(_) => Response::text("503 Service Unavailable", "the sidecar is stopping\n"),
    }
}
