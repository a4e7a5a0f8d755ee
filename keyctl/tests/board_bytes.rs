//! Issue 16's measurement: bytes on the board per join, per rekey and per heartbeat,
//! classical against hybrid, from real sessions (the simulated board's log). Prints the table
//! docs/BENCHMARKS.md quotes ("Post-quantum authentication: bytes on the board"):
//!
//! ```sh
//! cargo test -p keyctl --test board_bytes -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use keyctl::meeting::PqPolicy;
use keyctl::wire::{Message, Signed};
use sim::Sim;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Ed25519 identities, `pq = off`: revisions 1-2.
    Classical,
    /// Ed25519 identities, `pq = required`: revision 3's hybrid box.
    HybridBox,
    /// Ed25519 + ML-DSA-65 identities, `pq = required`: revision 4.
    HybridAll,
}

/// A table row: its name, and how to read its figure.
type Row = (&'static str, fn(&Figures) -> usize);

struct Figures {
    join_total: usize,
    announcement: usize,
    nonce: usize,
    link: usize,
    rekey: usize,
    rotation: usize,
    heartbeat: usize,
}

fn measure(setup: Setup) -> Figures {
    let mut sim = Sim::new("board-bytes");
    sim.pq = match setup {
        Setup::Classical => PqPolicy::Off,
        Setup::HybridBox | Setup::HybridAll => PqPolicy::Required,
    };
    let join = |sim: &mut Sim, name: &str| {
        if setup == Setup::HybridAll {
            sim.join_hybrid(name, "p0");
        } else {
            sim.join(name, "p0");
        }
    };
    for i in 0..3 {
        join(&mut sim, &format!("p{i}"));
        sim.advance(50);
    }
    sim.advance(5_000);
    sim.assert_converged();
    // The fourth participant's join: everything the board receives until the meeting is
    // quiet again (its announcement and nonce, the leader's link, one rekey per member, the
    // certifying heartbeat).
    let from = sim.log.len();
    join(&mut sim, "p3");
    sim.advance(2_500);
    sim.assert_converged();
    let window = &sim.log[from..];
    let size = |m: &Message| m.to_bytes().len();
    let kind = |m: &Message| m.to_bytes()[1];
    let first = |k: u8| {
        window
            .iter()
            .find(|(_, m)| kind(m) == k)
            .map(|(_, m)| size(m))
            .unwrap()
    };
    let (ann, nonce, link, rekey, hb) = match setup {
        Setup::HybridAll => (0x1A, 0x1D, 0x1B, 0x19, 0x1C),
        Setup::HybridBox => (0x10, 0x13, 0x15, 0x19, 0x12),
        Setup::Classical => (0x10, 0x13, 0x15, 0x11, 0x12),
    };
    let join_total = window.iter().map(|(_, m)| size(m)).sum();
    // Exactly those: two posts by the joiner, a link, a rekey per member but the leader, a
    // heartbeat.
    assert_eq!(
        window.len(),
        2 + 1 + 3 + 1,
        "{:?}",
        window.iter().map(|(_, m)| kind(m)).collect::<Vec<_>>()
    );
    let (announcement, nonce, link, rekey, heartbeat) = (
        first(ann),
        first(nonce),
        first(link),
        first(rekey),
        first(hb),
    );
    // A periodic rotation of the meeting of four: one rekey per member and the heartbeat
    // that certifies it.
    let mk_seq = sim.nodes[0].session.mk_seq();
    sim.advance(301_000);
    let next = sim.nodes[0].session.mk_seq();
    assert!(next > mk_seq);
    let rotation = sim
        .log
        .iter()
        .filter(|(_, m)| match m {
            Message::Rekey(r) => r.mk_seq == next,
            _ => false,
        })
        .map(|(_, m)| size(m))
        .sum::<usize>()
        + sim
            .log
            .iter()
            .find(|(_, m)| match m {
                Message::Heartbeat(h) => h.mk_seq == next,
                Message::HybridHeartbeat(h) => h.msg.mk_seq == next,
                _ => false,
            })
            .map(|(_, m)| size(m))
            .unwrap();
    Figures {
        join_total,
        announcement,
        nonce,
        link,
        rekey,
        rotation,
        heartbeat,
    }
}

#[test]
fn bytes_on_the_board_classical_against_hybrid() {
    let c = measure(Setup::Classical);
    let b = measure(Setup::HybridBox);
    let h = measure(Setup::HybridAll);
    println!(
        "| bytes on the board (meeting of 4, IDs as in the test) | Ed25519, classical box (`pq = off`) | Ed25519, hybrid box (revision 3, `required`) | Ed25519 + ML-DSA-65, hybrid box (revision 4, `required`) |"
    );
    println!("| --- | ---: | ---: | ---: |");
    let rows: [Row; 7] = [
        (
            "a join, in all (announcement, nonce, `Add` link, a rekey to each of the 3 members, heartbeat)",
            |f| f.join_total,
        ),
        ("announcement", |f| f.announcement),
        ("nonce post", |f| f.nonce),
        ("link post (`Add`)", |f| f.link),
        ("rekey, one member", |f| f.rekey),
        ("a rotation (3 rekeys and the certifying heartbeat)", |f| {
            f.rotation
        }),
        ("heartbeat", |f| f.heartbeat),
    ];
    for (name, get) in rows {
        println!("| {name} | {} | {} | {} |", get(&c), get(&b), get(&h));
    }
    // What revision 4 adds is exactly the ML-DSA key and signature halves (and revision 5 the
    // listed ML-DSA id).
    let sig = keyctl::crypto::hybrid_sig::ML_DSA_65_SIG_LEN;
    let pk = keyctl::crypto::hybrid_sig::ML_DSA_65_PK_LEN;
    assert_eq!(h.heartbeat, b.heartbeat + sig);
    assert_eq!(h.nonce, b.nonce + sig);
    // Revision 5: the hybrid member's `AddHybrid` records its 32-byte ML-DSA id too.
    assert_eq!(h.link, b.link + sig + 32);
    assert_eq!(h.rekey, b.rekey);
    assert_eq!(h.announcement, b.announcement + pk + sig);
    assert_eq!(h.rotation, b.rotation + sig);
    assert_eq!(<keyctl::wire::Heartbeat as Signed>::HYBRID_KIND as u8, 0x1C);
}
