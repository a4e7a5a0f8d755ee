/* libveil from C: a meeting leader's session keys a linked protector, which then protects an
 * RTP packet in place (and refuses to open its own packet); plus SFrame frame mode with a
 * known base key.
 *
 * Build and run: make -C capi/examples/c
 *
 * A real engine posts what veil_session_poll_transmit returns to its signalling server,
 * feeds what the server relays to veil_session_handle_message, and calls
 * veil_session_handle_timeout when veil_session_next_timeout is due. Here the leader is
 * alone, so no board is needed: it keys itself. capi/tests/c/handshake.c drives two. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "veil.h"

static int failed(const char *what, veil_result r) {
  fprintf(stderr, "%s: %s\n", what, veil_result_str(r));
  return 1;
}

static uint64_t wall_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int packets(void) {
  static const char meeting_id[] = "standup", meeting_uuid[] = "2026-11-22", user[] = "ada", device[] = "laptop";
  veil_session_params params = {
      (const uint8_t *)meeting_id, strlen(meeting_id), (const uint8_t *)meeting_uuid, strlen(meeting_uuid),
      (const uint8_t *)user, strlen(user), (const uint8_t *)device, strlen(device),
      (const uint8_t *)"Ada", 3, (const uint8_t *)user, strlen(user), (const uint8_t *)device, strlen(device),
      VEIL_PQ_PREFERRED, /* the hybrid box (X25519 + ML-KEM-768) wherever both sides can */
  };
  uint64_t now = wall_clock_ms();
  veil_session *session = NULL;
  veil_protector *protector = NULL;
  veil_result r = veil_session_new(&params, NULL, 0, now, &session); /* a fresh identity */
  if (r != VEIL_RESULT_OK) return failed("veil_session_new", r);
  r = veil_protector_new(VEIL_MODE_RTP, 0x0005, (const uint8_t *)meeting_id, strlen(meeting_id),
                         (const uint8_t *)meeting_uuid, strlen(meeting_uuid), VEIL_SLOT_UNSET, &protector);
  if (r != VEIL_RESULT_OK) return failed("veil_protector_new", r);
  r = veil_session_link_protector(session, protector);
  if (r != VEIL_RESULT_OK) return failed("veil_session_link_protector", r);

  /* Pull events until the first key is installed; keys are applied to the protector inside. */
  uint64_t sends_from = 0;
  veil_event event;
  while (sends_from == 0) {
    while (veil_session_poll_event(session, &event) == VEIL_RESULT_OK) {
      if (event.kind == VEIL_EVENT_KEY_UPDATE && event.protector_result == VEIL_RESULT_OK) {
        printf("key update: mkSeqNum %u for %u sender(s), sending from +%llu ms\n", event.mk_seq,
               event.roster_len, (unsigned long long)(event.at_ms - now));
        sends_from = event.at_ms;
      }
    }
    uint64_t at = 0;
    if (sends_from == 0 && veil_session_next_timeout(session, &at) == VEIL_RESULT_OK) {
      now = at; /* a real engine sleeps until then */
      veil_session_handle_timeout(session, now);
    }
  }
  char code[VEIL_SECURITY_CODE_SIZE];
  size_t code_len = 0;
  if (veil_session_security_code(session, code, sizeof code, &code_len) == VEIL_RESULT_OK)
    printf("security code (compare out of band): %s\n", code);

  /* RTP in place: the packet sits after VEIL_PROTECT_HEADROOM bytes, with 16 bytes of tail room. */
  uint8_t buf[VEIL_PROTECT_HEADROOM + 1200 + 16];
  uint8_t *rtp = buf + VEIL_PROTECT_HEADROOM;
  const uint8_t header[12] = {0x80, 111, 0x12, 0x34, 0, 0, 0x03, 0xe8, 0x0a, 0x0b, 0x0c, 0x01};
  memcpy(rtp, header, sizeof header);
  memset(rtp + sizeof header, 0x42, 160); /* 20 ms of audio */
  size_t offset = 0, len = 0;
  now = sends_from;
  r = veil_protector_protect(protector, now, 0, buf, sizeof buf, VEIL_PROTECT_HEADROOM, sizeof header + 160, &offset, &len);
  if (r != VEIL_RESULT_OK) return failed("veil_protector_protect", r);
  printf("protected RTP packet: %zu bytes (from %zu)\n", len, sizeof header + 160);
  uint8_t *wire = buf + offset;
  /* Only the other participants' protectors open it (capi/tests/c/handshake.c has two): a
   * protector refuses packets under its own sender slot, so a relay that sends them back gets
   * nothing decrypted (RFC 9605 4.4.1). */
  r = veil_protector_unprotect(protector, now, wire, len, &offset, &len);
  printf("unprotect of its own packet: %s\n", veil_result_str(r));
  if (r != VEIL_RESULT_WRONG_KEY_DIRECTION) return failed("veil_protector_unprotect", r);

  veil_protector_counters counters;
  veil_protector_get_counters(protector, &counters);
  printf("counters: sealed %llu, opened %llu, dropped %llu\n", (unsigned long long)counters.sealed,
         (unsigned long long)counters.opened,
         (unsigned long long)(counters.drop_bad_header + counters.drop_unknown_key + counters.drop_auth_failure +
                              counters.drop_replay + counters.drop_too_old + counters.drop_reflected +
                              counters.drop_stream_limit));
  veil_session_leave(session, now); /* erases the session's keys and retires the protector's */
  veil_session_free(session);
  veil_protector_free(protector);
  return 0;
}

static int frames(void) {
  /* Frame mode: whole encoded frames under a base key both ends know (RFC 9605 Appendix A). */
  veil_sframe_context *ctx = NULL;
  veil_result r = veil_sframe_context_new(0x0005, &ctx);
  if (r != VEIL_RESULT_OK) return failed("veil_sframe_context_new", r);
  static const uint8_t base_key[32] = {0x01, 0x02, 0x03};
  veil_sframe_add_send_key(ctx, 7, base_key, sizeof base_key);
  veil_sframe_add_recv_key(ctx, 8, base_key, sizeof base_key);
  const char frame[] = "an encoded video frame";
  size_t need = 0, len = 0;
  veil_sframe_encrypt_size(ctx, 7, sizeof frame, &need);
  uint8_t sealed[128], opened[128];
  r = veil_sframe_encrypt(ctx, 7, NULL, 0, (const uint8_t *)frame, sizeof frame, sealed, sizeof sealed, &len);
  if (r != VEIL_RESULT_OK) return failed("veil_sframe_encrypt", r);
  printf("SFrame frame: %zu bytes sealed (size query said %zu)\n", len, need);
  /* KID 7 is a send key here, so opening it in the same context is refused, with a reason. */
  r = veil_sframe_decrypt(ctx, NULL, 0, sealed, len, opened, sizeof opened, &len);
  printf("decrypt with a send-only key: %s\n", veil_result_str(r));
  veil_sframe_context_free(ctx);
  return 0;
}

int main(void) {
  printf("libveil %s (header %d.%d.%d)\n", veil_version(), VEIL_VERSION_MAJOR, VEIL_VERSION_MINOR, VEIL_VERSION_PATCH);
  return packets() || frames();
}
