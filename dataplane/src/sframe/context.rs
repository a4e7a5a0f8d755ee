//! The SFrame context of RFC 9605 Appendix A: keys by KID, per-key counters, frame encryption.

use std::collections::hash_map::Entry;

use keyctl::provider::CryptoProvider;
use rustc_hash::FxHashMap;
use std::ops::Range;

use super::{CipherSuite, Error, Header, KeyMaterial, MAX_HEADER_LEN, Result};

/// A send key (RFC 9605 4.4.1) and the next counter it will use.
#[derive(Debug)]
pub(crate) struct SendKey {
    kid: u64,
    material: KeyMaterial,
    /// `None` once `u64::MAX` has been used: a counter never repeats and never wraps.
    next_ctr: Option<u64>,
}

impl SendKey {
    /// The header the next seal will carry, without consuming its counter.
    pub(crate) fn peek_header(&self) -> Result<Header> {
        let ctr = self.next_ctr.ok_or(Error::CounterExhausted(self.kid))?;
        Ok(Header::new(self.kid, ctr))
    }

    /// Spends the counter of `header`, which [`Self::peek_header`] returned.
    pub(crate) fn consume(&mut self, header: Header) {
        self.next_ctr = header.ctr.checked_add(1);
    }

    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.material
    }
}

/// A receive key (RFC 9605 4.4.1).
#[derive(Debug)]
pub(crate) struct RecvKey {
    material: KeyMaterial,
}

impl RecvKey {
    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.material
    }
}

#[derive(Debug)]
enum Slot {
    Send(SendKey),
    Recv(RecvKey),
}

/// An SFrame context: one cipher suite and the keys installed under it.
///
/// A key is installed for one direction only (RFC 9605 4.4.1). Each send key carries its own
/// counter, starting at 0; sealing under an exhausted key is [`Error::CounterExhausted`].
/// Re-adding a base key after removing it would restart its counter, so base keys must be fresh
/// (Veil derives them from a fresh meeting key per epoch).
#[derive(Debug)]
pub struct Context {
    suite: CipherSuite,
    /// Derives and prepares every key of this context.
    provider: &'static CryptoProvider,
    /// Fx-hashed: only keys the owner installed are in it, so lookups by an attacker's KID cannot
    /// be steered into collisions, and the hot path avoids a SipHash per packet.
    keys: FxHashMap<u64, Slot>,
    /// Reused for `header || metadata` when metadata is present, so the in-place calls do not
    /// allocate once it has grown to the largest metadata seen.
    aad_scratch: Vec<u8>,
}

impl Context {
    /// An empty context for `suite`, with the default crypto provider.
    pub fn new(suite: CipherSuite) -> Self {
        Self::with_provider(suite, CryptoProvider::get_default())
    }

    /// An empty context for `suite` whose keys `provider` derives and prepares.
    pub fn with_provider(suite: CipherSuite, provider: &'static CryptoProvider) -> Self {
        Self {
            suite,
            provider,
            keys: FxHashMap::default(),
            aad_scratch: Vec::new(),
        }
    }

    /// The suite of every key in this context.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Installs a send key for `kid`, derived from `base_key` (RFC 9605 4.4.2).
    pub fn add_send_key(&mut self, kid: u64, base_key: &[u8]) -> Result<()> {
        let material = KeyMaterial::derive_with_provider(self.provider, self.suite, kid, base_key)?;
        self.insert(
            kid,
            Slot::Send(SendKey {
                kid,
                material,
                next_ctr: Some(0),
            }),
        )
    }

    /// Installs a receive key for `kid`, derived from `base_key` (RFC 9605 4.4.2).
    pub fn add_recv_key(&mut self, kid: u64, base_key: &[u8]) -> Result<()> {
        let material = KeyMaterial::derive_with_provider(self.provider, self.suite, kid, base_key)?;
        self.insert(kid, Slot::Recv(RecvKey { material }))
    }

    fn insert(&mut self, kid: u64, slot: Slot) -> Result<()> {
        match self.keys.entry(kid) {
            Entry::Occupied(_) => Err(Error::DuplicateKid(kid)),
            Entry::Vacant(entry) => {
                entry.insert(slot);
                Ok(())
            }
        }
    }

    /// Removes the key under `kid`, dropping (and so erasing) its material.
    pub fn remove_key(&mut self, kid: u64) -> Result<()> {
        self.keys
            .remove(&kid)
            .map(drop)
            .ok_or(Error::UnknownKid(kid))
    }

    /// Whether any key is installed under `kid`.
    pub fn has_key(&self, kid: u64) -> bool {
        self.keys.contains_key(&kid)
    }

    pub(crate) fn send_key_mut(&mut self, kid: u64) -> Result<&mut SendKey> {
        match self.keys.get_mut(&kid) {
            Some(Slot::Send(key)) => Ok(key),
            Some(Slot::Recv(_)) => Err(Error::KeyIsReceiveOnly(kid)),
            None => Err(Error::UnknownKid(kid)),
        }
    }

    pub(crate) fn recv_key(&self, kid: u64) -> Result<&RecvKey> {
        match self.keys.get(&kid) {
            Some(Slot::Recv(key)) => Ok(key),
            Some(Slot::Send(_)) => Err(Error::KeyIsSendOnly(kid)),
            None => Err(Error::UnknownKid(kid)),
        }
    }

    /// Encrypts one frame under the send key `kid`: returns `header || ciphertext || tag`
    /// (RFC 9605 4.4.3, AAD = header || metadata).
    pub fn encrypt(&mut self, kid: u64, metadata: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let headroom = self.send_key_mut(kid)?.peek_header()?.encoded_len();
        let mut out = vec![0u8; headroom + plaintext.len() + self.suite.tag_len()];
        out[headroom..headroom + plaintext.len()].copy_from_slice(plaintext);
        let range = self.encrypt_in_place(kid, metadata, &mut out, headroom, plaintext.len())?;
        debug_assert_eq!(range, 0..out.len());
        Ok(out)
    }

    /// Decrypts one SFrame ciphertext (`header || ciphertext || tag`) with the receive key its
    /// header names, returning the plaintext.
    pub fn decrypt(&mut self, metadata: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        let mut buf = ciphertext.to_vec();
        let range = self.decrypt_in_place(metadata, &mut buf)?;
        buf.truncate(range.end);
        buf.drain(..range.start);
        Ok(buf)
    }

    /// Encrypts `buf[headroom..headroom + len]` in place, writing the header just before it and
    /// the tag just after it. Returns the range of `buf` that holds the SFrame ciphertext.
    ///
    /// `headroom` must fit the header ([`crate::sframe::MAX_HEADER_LEN`] always does) and `buf`
    /// must have `Nt` bytes after the plaintext. Nothing is consumed when a check fails.
    pub fn encrypt_in_place(
        &mut self,
        kid: u64,
        metadata: &[u8],
        buf: &mut [u8],
        headroom: usize,
        len: usize,
    ) -> Result<Range<usize>> {
        let tag_len = self.suite.tag_len();
        let Self {
            keys, aad_scratch, ..
        } = self;
        let key = match keys.get_mut(&kid) {
            Some(Slot::Send(key)) => key,
            Some(Slot::Recv(_)) => return Err(Error::KeyIsReceiveOnly(kid)),
            None => return Err(Error::UnknownKid(kid)),
        };
        let header = key.peek_header()?;
        let header_len = header.encoded_len();
        let end = headroom
            .checked_add(len)
            .and_then(|end| end.checked_add(tag_len))
            .ok_or(Error::BufferTooSmall {
                needed: usize::MAX,
                got: buf.len(),
            })?;
        if headroom < header_len {
            return Err(Error::HeadroomTooSmall {
                needed: header_len,
                got: headroom,
            });
        }
        if buf.len() < end {
            return Err(Error::BufferTooSmall {
                needed: end,
                got: buf.len(),
            });
        }
        key.consume(header);
        let start = headroom - header_len;
        header.emit(&mut buf[start..headroom])?;
        let (front, back) = buf.split_at_mut(headroom);
        let header_bytes = &front[start..];
        let aad = join_aad(aad_scratch, header_bytes, metadata);
        key.material
            .seal_in_place(header.ctr, aad, &mut back[..len + tag_len])?;
        Ok(start..end)
    }

    /// Decrypts an SFrame ciphertext held in `buf` in place, returning the range of `buf` that
    /// now holds the plaintext.
    pub fn decrypt_in_place(&mut self, metadata: &[u8], buf: &mut [u8]) -> Result<Range<usize>> {
        let (header, header_len) = Header::parse(buf)?;
        let Self {
            keys, aad_scratch, ..
        } = self;
        let key = match keys.get(&header.kid) {
            Some(Slot::Recv(key)) => key,
            Some(Slot::Send(_)) => return Err(Error::KeyIsSendOnly(header.kid)),
            None => return Err(Error::UnknownKid(header.kid)),
        };
        let (front, back) = buf.split_at_mut(header_len);
        let aad = join_aad(aad_scratch, front, metadata);
        let pt_len = key.material.open_in_place(header.ctr, aad, back)?;
        Ok(header_len..header_len + pt_len)
    }
}

/// RFC 9605 4.4.3: AAD = header || metadata. Without metadata the header bytes are used where
/// they lie; otherwise both are copied into the reusable scratch buffer.
fn join_aad<'a>(scratch: &'a mut Vec<u8>, header: &'a [u8], metadata: &[u8]) -> &'a [u8] {
    if metadata.is_empty() {
        return header;
    }
    scratch.clear();
    // Room for the longest header, so a header that grows as CTR rises does not reallocate.
    scratch.reserve(MAX_HEADER_LEN + metadata.len());
    scratch.extend_from_slice(header);
    scratch.extend_from_slice(metadata);
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_counter_is_used_once_and_then_the_key_is_exhausted() {
        let mut ctx = Context::new(CipherSuite::Aes256GcmSha512_128);
        ctx.add_send_key(1, b"k").unwrap();
        if let Some(Slot::Send(key)) = ctx.keys.get_mut(&1) {
            key.next_ctr = Some(u64::MAX);
        }
        let last = ctx.encrypt(1, b"", b"x").unwrap();
        assert_eq!(Header::parse(&last).unwrap().0.ctr, u64::MAX);
        assert_eq!(ctx.encrypt(1, b"", b"x"), Err(Error::CounterExhausted(1)));
        let mut buf = [0u8; 64];
        assert_eq!(
            ctx.encrypt_in_place(1, b"", &mut buf, 17, 1),
            Err(Error::CounterExhausted(1))
        );
    }
}
