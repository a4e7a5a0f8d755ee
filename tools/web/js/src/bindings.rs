//! The JavaScript API (wasm-bindgen). Every method takes and returns plain bytes, numbers and
//! strings; errors are thrown as strings naming the refusal.

use keyctl::meeting::Millis;
use veil_web::{MeetingLink, WebEvent, WebParticipant};
use wasm_bindgen::prelude::*;

use super::{install_provider, page_rng};

fn now(ms: f64) -> Millis {
    Millis(if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    })
}

fn thrown(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// One participant of one meeting, made from the page's URL fragment.
#[wasm_bindgen]
pub struct Participant(WebParticipant);

#[wasm_bindgen]
impl Participant {
    /// Joins the meeting `fragment` names (`location.hash`) with a fresh identity: as the
    /// link's `user` when it names one (the user its invite is for; `name` must then be empty
    /// or that user), else as `name` (`guest` if empty).
    #[wasm_bindgen(constructor)]
    pub fn new(fragment: &str, name: &str) -> Result<Participant, JsError> {
        // The same provider again is fine; another one cannot have been installed here.
        let _ = install_provider();
        let link = MeetingLink::parse(fragment).map_err(thrown)?;
        let name = if name.is_empty() && link.user.is_none() {
            "guest"
        } else {
            name
        };
        WebParticipant::new(link, name, &mut page_rng())
            .map(Self)
            .map_err(thrown)
    }

    /// The board's address for `new WebSocket(...)`: `wss://`, or `ws://` for a board on this
    /// machine's loopback (the only place a board may run without TLS, and a secure context
    /// to browsers).
    #[wasm_bindgen(js_name = boardUrl)]
    pub fn board_url(&self) -> String {
        let board = &self.0.link().board;
        let loopback = ["127.0.0.1:", "localhost:", "[::1]:"]
            .iter()
            .any(|prefix| board.starts_with(prefix));
        let scheme = if loopback { "ws" } else { "wss" };
        format!("{scheme}://{board}/board")
    }

    /// The next binary message for the board's WebSocket, or `undefined`.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.0.poll_transmit()
    }

    /// One binary message from the board's WebSocket.
    #[wasm_bindgen(js_name = handleBoard)]
    pub fn handle_board(&mut self, message: &[u8], now_ms: f64) -> Result<(), JsError> {
        self.0
            .handle_board(message, now(now_ms), &mut page_rng())
            .map_err(thrown)
    }

    /// When to call `handleTimeout` next (ms since the epoch), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.0.poll_timeout().map(|t| t.0 as f64)
    }

    /// Runs the session's timers.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now_ms: f64) -> Result<(), JsError> {
        self.0
            .handle_timeout(now(now_ms), &mut page_rng())
            .map_err(thrown)
    }

    /// The next event as a short string (`joined`, `keyed N`, `alert ...`, `left ...`), or
    /// `undefined`.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<String> {
        self.0.poll_event().map(|e| match e {
            WebEvent::Joined { .. } => "joined".to_owned(),
            WebEvent::Keyed { mk_seq } => format!("keyed {mk_seq}"),
            WebEvent::Alert(a) => format!("alert {a:?}"),
            WebEvent::Presence => "presence".to_owned(),
            WebEvent::Left(r) => format!("left {r:?}"),
            WebEvent::BoardEnded(why) => format!("ended {why}"),
            other => format!("{other:?}"),
        })
    }

    /// The name this participant joined under.
    pub fn name(&self) -> String {
        self.0.name().to_owned()
    }

    /// What the page shows, as JSON text: `securityCode`, `participants` (`slot`, `name`,
    /// `state` from the leader's signed list), `mkSeqNum`, `packetsSealed`, `packetsOpened`,
    /// `packetsRefused`, `boardRefused`, `alerts`, `ended` (veil-web's `WebStatus::to_json`).
    #[wasm_bindgen(js_name = statusJson)]
    pub fn status_json(&self) -> String {
        self.0.status().to_json()
    }

    /// The leader's 39-digit security code, to read out to the others.
    #[wasm_bindgen(js_name = securityCode)]
    pub fn security_code(&self) -> Option<String> {
        self.0.security_code()
    }

    /// The signed participant list: one `slot name` line per present participant.
    pub fn roster(&self) -> Option<String> {
        self.0.roster().map(|r| {
            r.entries
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e.slot,
                        String::from_utf8_lossy(e.participant.user.as_bytes())
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// The relay's WebTransport URL (`https://HOST:PORT/veil`), or `undefined` if the link
    /// names no relay.
    #[wasm_bindgen(js_name = relayUrl)]
    pub fn relay_url(&self) -> Option<String> {
        self.0
            .link()
            .relay
            .as_ref()
            .map(|relay| format!("https://{relay}/veil"))
    }

    /// The relay certificate's SHA-256 for `serverCertificateHashes`, or `undefined`.
    #[wasm_bindgen(js_name = relayCertificateHash)]
    pub fn relay_certificate_hash(&self) -> Option<Vec<u8>> {
        self.0.link().relay_sha256.map(|h| h.to_vec())
    }

    /// Whether the meeting's media is RTP (`media=rtp` in the link): the page then sends
    /// RTP packets (its video).
    #[wasm_bindgen(js_name = rtpMedia)]
    pub fn rtp_media(&self) -> bool {
        self.0.link().media == dataplane::packet::Mode::Rtp
    }

    /// The next datagram for the relay's session (registration, refresh, the answer to a
    /// challenge), or `undefined`.
    #[wasm_bindgen(js_name = pollRelayTransmit)]
    pub fn poll_relay_transmit(&mut self) -> Option<Vec<u8>> {
        self.0.poll_relay_transmit()
    }

    /// The roster slot of the sender of the last datagram that opened (authenticated), or
    /// `undefined`: one decoder per sender.
    #[wasm_bindgen(js_name = lastSender)]
    pub fn last_sender(&self) -> Option<u32> {
        self.0.last_sender()
    }

    /// One datagram from the relay's session: the opened media, or `undefined` for the
    /// relay's challenge (answer it with `pollRelayTransmit`). Throws for a refused one.
    #[wasm_bindgen(js_name = handleRelay)]
    pub fn handle_relay(
        &mut self,
        now_ms: f64,
        datagram: &[u8],
    ) -> Result<Option<Vec<u8>>, JsError> {
        self.0.handle_relay(now(now_ms), datagram).map_err(thrown)
    }

    /// Seals one media payload: in datagram mode any bytes, in RTP mode an RTP packet (its
    /// header stays clear, its SSRC picks the stream).
    pub fn seal(&mut self, now_ms: f64, payload: &[u8]) -> Result<Vec<u8>, JsError> {
        self.0.seal(now(now_ms), payload).map_err(thrown)
    }

    /// Opens one received datagram.
    pub fn open(&mut self, now_ms: f64, datagram: &[u8]) -> Result<Vec<u8>, JsError> {
        self.0.open(now(now_ms), datagram).map_err(thrown)
    }

    /// Leaves: the signed Leave goes out with the next `pollTransmit`, and every key is erased.
    pub fn leave(&mut self, now_ms: f64) -> Result<(), JsError> {
        self.0.leave(now(now_ms)).map_err(thrown)
    }
}
