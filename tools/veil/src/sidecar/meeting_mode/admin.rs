//! The admin endpoint of meeting mode: `GET /status` (the JSON the main loop keeps current),
//! `GET /metrics`, the leader's commands, which go to the main loop over a channel, and the
//! host's `POST /invite?user=NAME`, answered here from the host's invite secret.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use keyctl::meeting::{InviteSecret, invite_id};
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};
use serde_json::json;
use veil_web::MeetingLink;
use zeroize::Zeroizing;

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

/// What the host's sidecar (`--host --invites`) issues invites with.
pub(super) struct Invites {
    /// Drawn from the OS's random source at start, never written anywhere; zeroized on drop.
    pub(super) secret: InviteSecret,
    /// The meeting (only its meetingID enters an invite, so a rejoin's new instance keeps
    /// every invite valid).
    pub(super) meeting: MeetingRef,
    /// Where links point, when `--web-url` and `--board-ws` are given.
    pub(super) page: Option<PageLink>,
}

/// The parts of a meeting link that are the same for every invitee.
pub(super) struct PageLink {
    /// `--web-url`: the page (`veil web`), without a fragment.
    pub(super) web_url: String,
    /// `--board-ws`: the board's WebSocket listener, `host:port`.
    pub(super) board_ws: String,
    /// `--web-relay`: the relay's WebTransport listener, `host:port`.
    pub(super) relay: Option<String>,
    /// `--web-relay-sha256`: its certificate's SHA-256.
    pub(super) relay_sha256: Option<[u8; 32]>,
    /// How this sidecar's media is sealed (`--rtp`), which a browser must match.
    pub(super) media: dataplane::packet::Mode,
    /// This meeting's post-quantum policy (`--pq`).
    pub(super) pq: keyctl::meeting::PqPolicy,
}

/// Why `POST /invite` was refused: a stable code (the JSON's `error`) and a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InviteRefusal {
    /// This sidecar holds no host secret (not `--host --invites`).
    NotInviteHost,
    /// No `user=NAME` in the query, or more than one.
    NoUser,
    /// A user ID outside 1 to 64 unreserved characters.
    BadUser,
}

impl InviteRefusal {
    fn status(self) -> &'static str {
        match self {
            Self::NotInviteHost => "409 Conflict",
            Self::NoUser | Self::BadUser => "400 Bad Request",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::NotInviteHost => "not_invite_host",
            Self::NoUser => "no_user",
            Self::BadUser => "bad_user",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::NotInviteHost => {
                "this sidecar issues no invites: only the host's sidecar started with --host \
                 --invites holds the meeting's invite secret"
            }
            Self::NoUser => "POST /invite?user=NAME (exactly one user)",
            Self::BadUser => {
                "user must be 1 to 64 characters of A-Z a-z 0-9 - . _ ~ (it goes into the link)"
            }
        }
    }

    fn response(self) -> Response {
        let body = json!({"error": self.code(), "message": self.message()}).to_string() + "\n";
        let mut response = Response::text(self.status(), body);
        response.content_type = "application/json";
        response
    }
}

/// The user a `POST /invite` query names: exactly one `user=NAME`, NAME as a link carries it.
fn invitee(query: Option<&str>) -> Result<&str, InviteRefusal> {
    let mut users = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("user="));
    let (Some(user), None) = (users.next(), users.next()) else {
        return Err(InviteRefusal::NoUser);
    };
    if veil_web::valid_user(user) {
        Ok(user)
    } else {
        Err(InviteRefusal::BadUser)
    }
}

/// `POST /invite?user=NAME`: `{"user", "invite", "link"}`, `link` when the page is configured.
pub(super) fn invite(query: Option<&str>, invites: Option<&Invites>) -> Response {
    let Some(invites) = invites else {
        return InviteRefusal::NotInviteHost.response();
    };
    let user = match invitee(query) {
        Ok(user) => user,
        Err(refusal) => return refusal.response(),
    };
    let Ok(id) = Id::new(Field::UserId, user.as_bytes()) else {
        return InviteRefusal::BadUser.response();
    };
    let invite = invite_id(&invites.secret, &invites.meeting, &id);
    let hex = Zeroizing::new(hex::encode(invite.expose_secret()));
    let link = invites.page.as_ref().map(|page| {
        let link = MeetingLink {
            board: page.board_ws.clone(),
            meeting: String::from_utf8_lossy(invites.meeting.meeting_id.as_bytes()).into_owned(),
            board_sha256: None,
            invite: Some(invite),
            user: Some(user.to_owned()),
            relay: page.relay.clone(),
            relay_sha256: page.relay_sha256,
            pq: page.pq,
            media: page.media,
        };
        let fragment = link.to_fragment();
        let mut url = Zeroizing::new(String::with_capacity(
            page.web_url.len() + 1 + fragment.len(),
        ));
        url.push_str(&page.web_url);
        url.push('#');
        url.push_str(&fragment);
        url
    });
    tracing::info!(user, "invite issued");
    match invite_body(user, &hex, link.as_deref().map(String::as_str)) {
        Some(body) => Response::ok("application/json", body),
        None => Response::text(
            "500 Internal Server Error",
            "the invite could not be encoded\n",
        ),
    }
}

/// `{"user":..,"invite":..[,"link":..]}` and a newline, written into one buffer sized for the
/// worst case of JSON's escaping, so no reallocation leaves a copy of the invite in freed
/// memory; zeroized when the answer is dropped. `None` if serde_json fails to write a string
/// (it does not, into a `Vec`) or the buffer had to grow (the bound holds, see the test).
fn invite_body(user: &str, invite_hex: &str, link: Option<&str>) -> Option<Zeroizing<String>> {
    // A character JSON escapes takes at most six bytes (`\u00XX`).
    let strings = user.len() + invite_hex.len() + link.map_or(0, str::len);
    let mut out = Zeroizing::new(Vec::with_capacity(6 * strings + 64));
    let capacity = out.capacity();
    out.extend_from_slice(b"{\"user\":");
    serde_json::to_writer(&mut *out, user).ok()?;
    out.extend_from_slice(b",\"invite\":");
    serde_json::to_writer(&mut *out, invite_hex).ok()?;
    if let Some(link) = link {
        out.extend_from_slice(b",\"link\":");
        serde_json::to_writer(&mut *out, link).ok()?;
    }
    out.extend_from_slice(b"}\n");
    if out.capacity() != capacity {
        // Cannot happen (the bound above holds for serde_json's escapes), but if it did a copy
        // would be left behind: answer nothing rather than pretend it did not happen.
        return None;
    }
    // Moves the allocation into the String (no copy); the Vec left behind is empty.
    String::from_utf8(std::mem::take(&mut *out))
        .map(Zeroizing::new)
        .map_err(|e| drop(Zeroizing::new(e.into_bytes())))
        .ok()
}

/// Answers one admin request.
pub(super) fn admin(
    request: &Request,
    exposed: &Exposed,
    status: &SharedStatus,
    commands: &Sender<AdminCommand>,
    invites: Option<&Invites>,
) -> Response {
    let path = request.path.as_str();
    let command = match (request.method.as_str(), path) {
        ("POST", "/invite") => return invite(request.query.as_deref(), invites),
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
                "GET /status, GET /metrics, POST /kick/SLOT, POST /lock, POST /unlock, \
                 POST /invite?user=NAME\n",
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_invite_answer_is_json_written_without_reallocating() {
        let body = invite_body(
            "alice_1",
            &"ab".repeat(32),
            Some("https://h/#veil1&invite=ab"),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["user"], "alice_1");
        assert_eq!(value["invite"], "ab".repeat(32));
        assert_eq!(value["link"], "https://h/#veil1&invite=ab");
        assert!(body.ends_with("}\n"));
        let without = invite_body("bob", "00", None).unwrap();
        assert_eq!(without.as_str(), "{\"user\":\"bob\",\"invite\":\"00\"}\n");
    }

    #[test]
    fn the_worst_case_of_json_escaping_fits_the_first_buffer() {
        // Every character escaped as \u00XX: six bytes each, the bound the buffer is sized to;
        // a reallocation would make it answer nothing.
        let control = "\u{1}".repeat(40);
        let body = invite_body(&control, &control, Some(&control)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["user"].as_str().unwrap(), control);
        assert_eq!(value["link"].as_str().unwrap(), control);
    }
}
