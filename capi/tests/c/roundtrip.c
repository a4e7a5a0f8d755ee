/* Round trips through the C API: SFrame frames under every suite, and Veil packets (datagram
 * and RTP mode, in place and into a second buffer) between two protectors keyed alike. */
#include <string.h>

#include "check.h"

static const uint16_t SUITES[] = {1, 2, 3, 4, 5, 6, 7, 8};

static void frame_round_trip(uint16_t suite) {
  veil_sframe_context *alice = NULL;
  veil_sframe_context *bob = NULL;
  CHECK_OK(veil_sframe_context_new(suite, &alice));
  CHECK_OK(veil_sframe_context_new(suite, &bob));
  static const uint8_t base_key[] = "a base key of thirty-two bytes!";
  const uint64_t kid = 0x0102;
  CHECK_OK(veil_sframe_add_send_key(alice, kid, base_key, sizeof base_key - 1));
  CHECK_OK(veil_sframe_add_recv_key(bob, kid, base_key, sizeof base_key - 1));

  static const uint8_t metadata[] = {0xde, 0xad, 0xbe, 0xef};
  uint8_t frame[1200], sealed[1300], opened[1300];
  for (size_t i = 0; i < sizeof frame; i++) frame[i] = (uint8_t)(i * 7);
  const size_t sizes[] = {0, 1, 100, sizeof frame};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t need = 0, sealed_len = 0, opened_len = 0;
    CHECK_OK(veil_sframe_encrypt_size(alice, kid, sizes[s], &need));
    CHECK_OK(veil_sframe_encrypt(alice, kid, metadata, sizeof metadata, frame, sizes[s], sealed, sizeof sealed, &sealed_len));
    CHECK(sealed_len == need);
    CHECK_OK(veil_sframe_decrypt(bob, metadata, sizeof metadata, sealed, sealed_len, opened, sizeof opened, &opened_len));
    CHECK(opened_len == sizes[s] && memcmp(opened, frame, opened_len) == 0);
    /* Other metadata: the frame does not authenticate. */
    CHECK_RESULT(veil_sframe_decrypt(bob, NULL, 0, sealed, sealed_len, opened, sizeof opened, &opened_len),
                 VEIL_RESULT_AUTHENTICATION_FAILED);
  }
  CHECK_OK(veil_sframe_remove_key(bob, kid));
  size_t len = 0;
  CHECK_RESULT(veil_sframe_decrypt(bob, NULL, 0, (const uint8_t *)"\x11\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 17, frame, sizeof frame, &len),
               VEIL_RESULT_UNKNOWN_KEY);
  veil_sframe_context_free(alice);
  veil_sframe_context_free(bob);
}

enum { ALICE = 1, BOB = 2 };
static const uint64_t NOW = 1700000000000ull;

static veil_protector *keyed_protector(uint32_t mode, uint32_t own_slot) {
  static const uint8_t meeting_id[] = "meeting-42";
  static const uint8_t meeting_uuid[] = "instance-7";
  veil_protector *p = NULL;
  CHECK_OK(veil_protector_new(mode, 5, meeting_id, sizeof meeting_id - 1, meeting_uuid, sizeof meeting_uuid - 1, own_slot, &p));
  uint8_t alice_id[64], bob_id[64];
  size_t alice_len = 0, bob_len = 0;
  CHECK_OK(veil_sender_id((const uint8_t *)"alice", 5, (const uint8_t *)"laptop", 6, alice_id, sizeof alice_id, &alice_len));
  CHECK_OK(veil_sender_id((const uint8_t *)"bob", 3, (const uint8_t *)"phone", 5, bob_id, sizeof bob_id, &bob_len));
  CHECK(alice_len == 2 + 5 + 2 + 6);
  const veil_roster_entry roster[] = {{ALICE, alice_id, alice_len}, {BOB, bob_id, bob_len}};
  uint8_t mk[32];
  for (int i = 0; i < 32; i++) mk[i] = (uint8_t)(0x40 + i);
  CHECK_OK(veil_protector_install_key(p, 1, mk, sizeof mk, roster, 2, NOW, NOW));
  return p;
}

static void datagram_round_trip(void) {
  veil_protector *alice = keyed_protector(VEIL_MODE_DATAGRAM, ALICE);
  veil_protector *bob = keyed_protector(VEIL_MODE_DATAGRAM, BOB);
  static const char payload[] = "one datagram of media";
  const size_t payload_len = sizeof payload - 1;

  /* In place: the payload sits after VEIL_PROTECT_HEADROOM bytes, with room for the tag. */
  uint8_t buf[VEIL_PROTECT_HEADROOM + 64 + 16];
  memcpy(buf + VEIL_PROTECT_HEADROOM, payload, payload_len);
  size_t offset = 0, len = 0;
  CHECK_OK(veil_protector_protect(alice, NOW, 0, buf, sizeof buf, VEIL_PROTECT_HEADROOM, payload_len, &offset, &len));
  CHECK(len > payload_len);
  uint8_t wire[128];
  memcpy(wire, buf + offset, len);
  const size_t wire_len = len;
  CHECK(wire[0] == 0 && wire[1] == 0 && wire[2] == 0 && wire[3] == 1); /* mkSeqNum 1 */

  uint8_t copy[128];
  memcpy(copy, wire, wire_len);
  CHECK_OK(veil_protector_unprotect(bob, NOW, copy, wire_len, &offset, &len));
  CHECK(len == payload_len && memcmp(copy + offset, payload, len) == 0);

  /* The same packet again is a replay, refused by bob and by a second worker of bob's. */
  memcpy(copy, wire, wire_len);
  CHECK_RESULT(veil_protector_unprotect(bob, NOW, copy, wire_len, &offset, &len), VEIL_RESULT_REPLAY);
  /* A refused packet is left exactly as given: no plaintext behind (finding 19.8). */
  CHECK(memcmp(copy, wire, wire_len) == 0);
  veil_protector *bob_worker = NULL;
  CHECK_OK(veil_protector_new_worker(bob, &bob_worker));
  uint8_t out[128];
  CHECK_RESULT(veil_protector_unprotect_into(bob_worker, NOW, wire, wire_len, out, sizeof out, &len), VEIL_RESULT_REPLAY);

  /* Alice's own packet sent back to her (a reflecting relay) is refused: RFC 9605 4.4.1. */
  CHECK_RESULT(veil_protector_unprotect_into(alice, NOW, wire, wire_len, out, sizeof out, &len), VEIL_RESULT_WRONG_KEY_DIRECTION);

  /* Datagram mode has one stream per sender, index 0. */
  size_t sealed_len = 0;
  CHECK_RESULT(veil_protector_protect_into(alice, NOW, 3, (const uint8_t *)payload, payload_len, wire, sizeof wire, &sealed_len), VEIL_RESULT_INVALID_ARGUMENT);

  /* Into a second buffer, both ways. */
  CHECK_OK(veil_protector_protect_into(alice, NOW, 0, (const uint8_t *)payload, payload_len, wire, sizeof wire, &sealed_len));
  CHECK_OK(veil_protector_unprotect_into(bob_worker, NOW, wire, sealed_len, out, sizeof out, &len));
  CHECK(len == payload_len && memcmp(out, payload, len) == 0);

  /* A flipped bit in a fresh packet is an authentication failure, counted. (In the packet
   * just opened it would be refused as a replay first: the window is screened before the AEAD.) */
  CHECK_OK(veil_protector_protect_into(alice, NOW, 0, (const uint8_t *)payload, payload_len, wire, sizeof wire, &sealed_len));
  wire[sealed_len - 1] ^= 0x80;
  CHECK_RESULT(veil_protector_unprotect_into(bob_worker, NOW, wire, sealed_len, out, sizeof out, &len), VEIL_RESULT_AUTHENTICATION_FAILED);

  veil_protector_counters c;
  CHECK_OK(veil_protector_get_counters(alice, &c));
  CHECK(c.sealed == 3 && c.opened == 0 && c.seal_failed == 1 && c.drop_reflected == 1);
  CHECK_OK(veil_protector_get_counters(bob, &c));
  CHECK(c.opened == 1 && c.drop_replay == 1);
  CHECK_OK(veil_protector_get_counters(bob_worker, &c));
  CHECK(c.opened == 1 && c.drop_replay == 1 && c.drop_auth_failure == 1);

  veil_protector_free(bob_worker);
  veil_protector_free(bob);
  veil_protector_free(alice);
}

static void rtp_round_trip(void) {
  veil_protector *alice = keyed_protector(VEIL_MODE_RTP, ALICE);
  veil_protector *bob = keyed_protector(VEIL_MODE_RTP, BOB);
  /* RTP version 2, payload type 96, sequence 7, timestamp 0x1000, SSRC 0xcafe0001. */
  uint8_t rtp[12 + 40] = {0x80, 96, 0, 7, 0, 0, 0x10, 0, 0xca, 0xfe, 0x00, 0x01};
  for (size_t i = 12; i < sizeof rtp; i++) rtp[i] = (uint8_t)i;

  uint8_t buf[VEIL_PROTECT_HEADROOM + sizeof rtp + 16];
  memcpy(buf + VEIL_PROTECT_HEADROOM, rtp, sizeof rtp);
  size_t offset = 0, len = 0;
  CHECK_OK(veil_protector_protect(alice, NOW, 1, buf, sizeof buf, VEIL_PROTECT_HEADROOM, sizeof rtp, &offset, &len));
  /* The RTP header stays in the clear, so a relay can route the packet. */
  CHECK(memcmp(buf + offset, rtp, 12) == 0);
  CHECK(memcmp(buf + offset + 12, rtp + 12, 8) != 0);
  uint8_t *packet = buf + offset;
  CHECK_OK(veil_protector_unprotect(bob, NOW, packet, len, &offset, &len));
  CHECK(len == sizeof rtp && memcmp(packet + offset, rtp, len) == 0);

  /* Into a second buffer: the RTP header still leads the protected packet. */
  uint8_t wire[sizeof rtp + VEIL_PROTECT_OVERHEAD], opened[sizeof wire];
  size_t wire_len = 0, opened_len = 0;
  CHECK_OK(veil_protector_protect_into(alice, NOW, 1, rtp, sizeof rtp, wire, sizeof wire, &wire_len));
  CHECK(memcmp(wire, rtp, 12) == 0 && wire_len > sizeof rtp);
  CHECK_OK(veil_protector_unprotect_into(bob, NOW, wire, wire_len, opened, sizeof opened, &opened_len));
  CHECK(opened_len == sizeof rtp && memcmp(opened, rtp, opened_len) == 0);

  /* Not an RTP packet: refused before any counter is spent. */
  uint8_t junk[64] = {0};
  CHECK_RESULT(veil_protector_protect(alice, NOW, 1, junk, sizeof junk, VEIL_PROTECT_HEADROOM, 8, &offset, &len), VEIL_RESULT_MALFORMED);
  veil_protector_free(bob);
  veil_protector_free(alice);
}

int main(void) {
  for (size_t i = 0; i < sizeof SUITES / sizeof SUITES[0]; i++) frame_round_trip(SUITES[i]);
  printf("frames: round trip under all 8 suites\n");
  datagram_round_trip();
  printf("packets: datagram mode in place and into buffers, replay across workers refused\n");
  rtp_round_trip();
  printf("packets: RTP mode keeps the header in the clear\n");
  return 0;
}
