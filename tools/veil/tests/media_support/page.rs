//! What a page's event loop does with the browser participant's core (`veil-web`) and its
//! board WebSocket, for the tests that stand in for the page (invites.rs, web_media.rs).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use std::net::TcpStream;

use keyctl::meeting::Millis;
use keyctl::rng::OsRng;
use tungstenite::Message;
use veil_web::WebParticipant;

/// The wall clock in milliseconds, as a page reads `Date.now()`.
pub fn now() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

/// One round of the board side: sends what the core queued, hands it at most one message
/// (the socket has a short read timeout), runs its timers. A refusal changes nothing (counted
/// by the core); a page logs it and goes on.
pub fn pump_board(
    core: &mut WebParticipant,
    ws: &mut tungstenite::WebSocket<TcpStream>,
    rng: &mut OsRng,
) {
    while let Some(message) = core.poll_transmit() {
        ws.send(Message::Binary(message.into())).unwrap();
    }
    match ws.read() {
        Ok(Message::Binary(b)) => {
            let _ = core.handle_board(&b, now(), rng);
        }
        Ok(_) => {}
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        Err(e) => panic!("websocket: {e}"),
    }
    if core.poll_timeout().is_some_and(|t| t <= now()) {
        let _ = core.handle_timeout(now(), rng);
    }
}
