//! `SpeedTest`: veil-web's seal and open bursts ([`veil_web::speed`]) for the page that times
//! them (www/speed.html, run by `tools/web/js/browser-speed`); the page's `performance.now()`
//! is the clock.

use veil_web::speed::Speed;
use wasm_bindgen::prelude::*;

/// Seal and open bursts at one payload size.
#[wasm_bindgen]
pub struct SpeedTest(Speed);

#[wasm_bindgen]
impl SpeedTest {
    /// Payloads of `size` bytes (at most 1,200).
    #[wasm_bindgen(constructor)]
    pub fn new(size: usize) -> Result<SpeedTest, JsError> {
        let _ = crate::install_provider();
        Speed::new(size)
            .map(Self)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Seals `n` packets; the bytes sealed.
    pub fn seal(&mut self, n: u32) -> Result<f64, JsError> {
        self.0
            .seal(n)
            .map(|bytes| bytes as f64)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Seals `n` packets to open next (not to be timed).
    #[wasm_bindgen(js_name = prepareOpen)]
    pub fn prepare_open(&mut self, n: u32) -> Result<(), JsError> {
        self.0
            .prepare_open(n)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Opens the prepared packets; how many opened.
    pub fn open(&mut self) -> Result<u32, JsError> {
        self.0.open().map_err(|e| JsError::new(&e.to_string()))
    }
}
