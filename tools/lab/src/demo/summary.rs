//! The demo's verdict: per receiver and sender, which packets arrived, and every check.

use super::display::group_digits;
use super::{Member, Pq};

/// Overlap (seconds) after which two participants must have exchanged media.
const MIN_OVERLAP_S: f64 = 5.0;

fn drops(member: &Member, reason: &str) -> u64 {
    member
        .last
        .as_ref()
        .and_then(|s| s.get("packets"))
        .and_then(|p| p.get("drops"))
        .and_then(|d| d.get(reason))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

fn overlap_s(a: &Member, b: &Member) -> f64 {
    let start = a.joined.max(b.joined);
    let end = match (a.left, b.left) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return f64::INFINITY,
    };
    end.saturating_duration_since(start).as_secs_f64()
}

/// Prints the summary; true if every check passed.
pub(super) fn report(members: &[Member], pq: Pq) -> bool {
    let mut failures: Vec<String> = Vec::new();
    println!("\nwhat each receiver got from each sender (packet numbers of the sender's source):");
    for receiver in members {
        let spans = receiver.sink.spans();
        for sender in members.iter().filter(|s| s.index != receiver.index) {
            let pair = format!("{} <- {}", receiver.name, sender.name);
            match spans.get(&sender.index) {
                Some(span) => {
                    println!(
                        "  {pair:<16} #{}..#{} ({} packets of {} sent), {} missing, {} duplicated",
                        span.first,
                        span.last,
                        span.received,
                        sender.sent,
                        span.missing,
                        span.duplicates
                    );
                    if span.missing > 0 || span.duplicates > 0 {
                        failures.push(format!("{pair}: a gap or a duplicate"));
                    }
                    if receiver.stayed && span.last + 1 != sender.sent {
                        failures.push(format!(
                            "{pair}: the last packet was #{}, the sender's last #{}",
                            span.last,
                            sender.sent.saturating_sub(1)
                        ));
                    }
                }
                None => {
                    println!("  {pair:<16} nothing");
                    if overlap_s(receiver, sender) > MIN_OVERLAP_S {
                        failures.push(format!("{pair}: nothing arrived though both were there"));
                    }
                }
            }
        }
        let no_key = receiver
            .last
            .as_ref()
            .and_then(|s| s.get("packets"))
            .and_then(|p| p.get("send_drops"))
            .and_then(|d| d.get("no_key"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        println!(
            "  {:<16} its sidecar: {} not sent (no active key yet), {} not opened (unknown \
             key: sent under a key it never held), {} auth failures, {} replays",
            receiver.name,
            no_key,
            drops(receiver, "unknown_key"),
            drops(receiver, "auth_failure"),
            drops(receiver, "replay")
        );
        for reason in ["auth_failure", "replay"] {
            let n = drops(receiver, reason);
            if n > 0 {
                failures.push(format!(
                    "{}: {n} packets dropped as {reason}",
                    receiver.name
                ));
            }
        }
        if receiver.sink.malformed() > 0 {
            failures.push(format!("{}: altered packets delivered", receiver.name));
        }
        if !receiver.clean_exit {
            failures.push(format!(
                "{}: the sidecar did not exit cleanly",
                receiver.name
            ));
        }
    }
    let codes: Vec<Option<&str>> = members
        .iter()
        .filter(|m| m.stayed)
        .map(|m| {
            m.last
                .as_ref()
                .and_then(|s| s.get("security_code"))
                .and_then(serde_json::Value::as_str)
        })
        .collect();
    match codes.first() {
        Some(Some(first)) if codes.iter().all(|c| *c == Some(*first)) => {
            println!(
                "\nleader security code, the same for all {}: {}",
                codes.len(),
                group_digits(first)
            );
        }
        _ => failures.push("the participants' security codes differ or are missing".into()),
    }
    pq_report(members, pq, &mut failures);
    if failures.is_empty() {
        println!(
            "PASS: every receiver got every packet sent while it held the key, nothing failed \
             authentication, all codes equal{}",
            if pq == Pq::Required {
                ", every meeting key delivered by the hybrid box, every signature hybrid"
            } else {
                ""
            }
        );
        true
    } else {
        for f in &failures {
            println!("FAIL: {f}");
        }
        false
    }
}

/// Post-quantum key delivery as each participant last reported it: the meeting's policy, and
/// the members it saw keyed classically. Under `--pq required` every stayed participant must
/// report the policy `required` and nobody keyed classically, and, since keyctl revision 4, a
/// hybrid identity of its own and a leader that signs hybrid (so every signature is hybrid).
fn pq_report(members: &[Member], pq: Pq, failures: &mut Vec<String>) {
    println!("\npost-quantum key delivery (--pq {}):", pq.as_str());
    for member in members.iter().filter(|m| m.stayed) {
        let s = member.last.as_ref();
        let policy = s
            .and_then(|x| x.get("pq_policy"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown");
        let classical: Vec<&str> = s
            .and_then(|x| x.get("classical"))
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let own = s.and_then(super::own_key_delivery).unwrap_or("unknown");
        let field = |name: &str| {
            s.and_then(|x| x.get(name))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown")
                .to_owned()
        };
        let (identity, authentication) = (field("identity"), field("authentication"));
        println!(
            "  {:<16} meeting policy {policy}, its own key {own}, identity {identity}, \
             leader's signatures {authentication}, keyed classically: {}",
            member.name,
            if classical.is_empty() {
                "nobody".to_owned()
            } else {
                classical.join(", ")
            }
        );
        if pq == Pq::Required {
            if policy != "required" {
                failures.push(format!("{}: meeting policy {policy}", member.name));
            }
            if identity != "hybrid" || authentication != "hybrid" {
                failures.push(format!(
                    "{}: identity {identity}, leader's signatures {authentication}",
                    member.name
                ));
            }
            if !classical.is_empty() || !matches!(own, "hybrid" | "leader") {
                failures.push(format!(
                    "{}: a key was delivered classically ({own}; {})",
                    member.name,
                    classical.join(", ")
                ));
            }
        }
    }
}
