/* Two participants agree on a meeting key entirely through the C API: a leader and a member,
 * each a veil_session with a linked veil_protector, exchange board messages over an in-memory
 * board with virtual time until both hold the same mkSeqNum and show the same security code;
 * then media protected by one opens at the other, both ways. */
#include <string.h>

#include "check.h"

#define MAX_MESSAGES 256
#define MAX_MESSAGE 65536

/* The bulletin board: everything posted, in order; each reader keeps a cursor. */
struct board {
  uint8_t *messages[MAX_MESSAGES];
  size_t lens[MAX_MESSAGES];
  int authors[MAX_MESSAGES];
  size_t count;
};

struct participant {
  const char *user;
  const char *device;
  veil_session *session;
  veil_protector *protector;
  size_t cursor;
  uint32_t keyed_mk_seq; /* the last key update applied to the protector */
  uint64_t sends_from;    /* when that key activates */
  uint32_t roster_len;    /* how many senders that key covers */
  uint32_t retired_mk_seq; /* the last epoch a retire event named */
  uint64_t retire_at;      /* and when it stops decrypting */
};

static const char MEETING_ID[] = "weekly-sync";
static const char MEETING_UUID[] = "instance-2026-11-22";

static void join(struct participant *p, const struct participant *leader, uint64_t now) {
  veil_session_params params = {
      (const uint8_t *)MEETING_ID, strlen(MEETING_ID),
      (const uint8_t *)MEETING_UUID, strlen(MEETING_UUID),
      (const uint8_t *)p->user, strlen(p->user),
      (const uint8_t *)p->device, strlen(p->device),
      (const uint8_t *)p->user, strlen(p->user),
      (const uint8_t *)leader->user, strlen(leader->user),
      (const uint8_t *)leader->device, strlen(leader->device),
      VEIL_PQ_REQUIRED, /* every key in the hybrid box (X25519 + ML-KEM-768) */
  };
  CHECK_OK(veil_session_new(&params, NULL, 0, now, &p->session));
  CHECK_OK(veil_protector_new(VEIL_MODE_DATAGRAM, 5, (const uint8_t *)MEETING_ID, strlen(MEETING_ID),
                              (const uint8_t *)MEETING_UUID, strlen(MEETING_UUID), VEIL_SLOT_UNSET, &p->protector));
  CHECK_OK(veil_session_link_protector(p->session, p->protector));
}

/* Moves what `p` wants to post onto the board. Starts with a one-byte buffer to exercise the
 * BUFFER_TOO_SMALL path: the message stays queued and the needed size comes back. */
static int post(struct board *b, struct participant *p, int author) {
  int moved = 0;
  for (;;) {
    uint8_t tiny[1];
    size_t need = 0;
    veil_result r = veil_session_poll_transmit(p->session, tiny, sizeof tiny, &need);
    if (r == VEIL_RESULT_EMPTY) return moved;
    CHECK(r == VEIL_RESULT_BUFFER_TOO_SMALL && need > 1 && need <= MAX_MESSAGE);
    CHECK(b->count < MAX_MESSAGES);
    uint8_t *msg = malloc(need);
    CHECK(msg != NULL);
    size_t len = 0;
    CHECK_OK(veil_session_poll_transmit(p->session, msg, need, &len));
    CHECK(len == need);
    b->messages[b->count] = msg;
    b->lens[b->count] = len;
    b->authors[b->count] = author;
    b->count++;
    moved = 1;
  }
}

/* Delivers to `p` what others posted since its cursor. */
static int deliver(struct board *b, struct participant *p, int me, uint64_t now) {
  int moved = 0;
  for (; p->cursor < b->count; p->cursor++) {
    if (b->authors[p->cursor] == me) continue;
    /* A refusal (for example a message about someone not yet known) is a typed result, not a
     * failure of the test; the session's counters account for it. */
    (void)veil_session_handle_message(p->session, now, b->messages[p->cursor], b->lens[p->cursor]);
    moved = 1;
  }
  return moved;
}

static void drain_events(struct participant *p) {
  veil_event e;
  while (veil_session_poll_event(p->session, &e) == VEIL_RESULT_OK) {
    if (e.kind == VEIL_EVENT_KEY_UPDATE) {
      CHECK(e.protector_result == VEIL_RESULT_OK);
      CHECK(e.own_slot != VEIL_SLOT_UNSET);
      CHECK(e.roster_len >= 1);
      p->keyed_mk_seq = e.mk_seq;
      p->roster_len = e.roster_len;
      p->sends_from = e.at_ms;
    } else if (e.kind == VEIL_EVENT_RETIRE) {
      CHECK(e.protector_result == VEIL_RESULT_OK);
      p->retired_mk_seq = e.mk_seq;
      p->retire_at = e.at_ms;
    } else if (e.kind == VEIL_EVENT_ALERT) {
      fprintf(stderr, "%s: alert %u: %s\n", p->user, e.alert, e.text);
      CHECK(!"no alert expected in an honest meeting");
    }
  }
}

static void check_media(struct participant *from, struct participant *to, uint64_t now) {
  static const char payload[] = "audio frame 1";
  uint8_t wire[128], out[128];
  size_t len = 0, opened = 0;
  CHECK_OK(veil_protector_protect_into(from->protector, now, 0, (const uint8_t *)payload, sizeof payload, wire, sizeof wire, &len));
  CHECK_OK(veil_protector_unprotect_into(to->protector, now, wire, len, out, sizeof out, &opened));
  CHECK(opened == sizeof payload && memcmp(out, payload, opened) == 0);
}

/* Both hold the key that covers both of them, and it sends by `now`. */
static int both_keyed(struct participant *const all[2], uint64_t now) {
  const struct participant *leader = all[0], *member = all[1];
  uint64_t sends = leader->sends_from > member->sends_from ? leader->sends_from : member->sends_from;
  return member->keyed_mk_seq != 0 && leader->keyed_mk_seq == member->keyed_mk_seq &&
         leader->roster_len == 2 && member->roster_len == 2 && now >= sends;
}

/* The leader's first key has passed its retirement time. */
static int first_key_retired(struct participant *const all[2], uint64_t now) {
  return all[0]->retired_mk_seq == 1 && now >= all[0]->retire_at;
}

/* Posts and delivers until the board is quiet, then jumps virtual time to the next timer (or
 * to when the key sends), until `done`. */
static void pump(struct board *b, struct participant *const all[2], uint64_t *now,
                 int (*done)(struct participant *const all[2], uint64_t now)) {
  for (int step = 0; step < 400; step++) {
    int moved = 0;
    for (int i = 0; i < 2; i++) moved |= post(b, all[i], i);
    for (int i = 0; i < 2; i++) moved |= deliver(b, all[i], i, *now);
    for (int i = 0; i < 2; i++) drain_events(all[i]);
    if (moved) continue;
    if (done(all, *now)) return;
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < 2; i++) {
      uint64_t at = 0;
      if (veil_session_next_timeout(all[i]->session, &at) == VEIL_RESULT_OK && at < next) next = at;
      if (all[i]->sends_from > *now && all[i]->sends_from < next) next = all[i]->sends_from;
    }
    CHECK(next != UINT64_MAX);
    *now = next > *now ? next : *now;
    for (int i = 0; i < 2; i++) {
      uint64_t at = 0;
      if (veil_session_next_timeout(all[i]->session, &at) == VEIL_RESULT_OK && at <= *now) {
        CHECK_OK(veil_session_handle_timeout(all[i]->session, *now));
      }
    }
  }
  CHECK(!"the meeting did not get there in 400 steps");
}

int main(void) {
  struct board board = {0};
  struct participant leader = {"host", "desk", NULL, NULL, 0, 0, 0, 0, 0, 0};
  struct participant member = {"guest", "phone", NULL, NULL, 0, 0, 0, 0, 0, 0};
  struct participant *const all[2] = {&leader, &member};
  uint64_t now = 1700000000000ull;
  join(&leader, &leader, now);
  join(&member, &leader, now);
  uint8_t leads = 9;
  CHECK_OK(veil_session_is_leader(leader.session, &leads));
  CHECK(leads == 1);
  CHECK_OK(veil_session_is_leader(member.session, &leads));
  CHECK(leads == 0);

  pump(&board, all, &now, both_keyed);
  uint32_t leader_seq = 0, member_seq = 0;
  CHECK_OK(veil_session_mk_seq(leader.session, &leader_seq));
  CHECK_OK(veil_session_mk_seq(member.session, &member_seq));
  CHECK(leader_seq != 0 && leader_seq == member_seq && member.keyed_mk_seq == member_seq);
  printf("both hold mkSeqNum %u after %zu board messages\n", member_seq, board.count);

  char leader_code[VEIL_SECURITY_CODE_SIZE], member_code[VEIL_SECURITY_CODE_SIZE];
  size_t code_len = 0;
  CHECK_OK(veil_session_security_code(leader.session, leader_code, sizeof leader_code, &code_len));
  CHECK(code_len == 39 && leader_code[39] == '\0');
  CHECK_OK(veil_session_security_code(member.session, member_code, sizeof member_code, &code_len));
  CHECK(strcmp(leader_code, member_code) == 0);
  printf("both show security code %s\n", member_code);

  /* Post-quantum key delivery: the leader's policy is the meeting's, and the member's key came
   * in the hybrid box, as both see it. */
  uint32_t policy = 99, delivery = 99;
  CHECK_OK(veil_session_pq_policy(member.session, &policy));
  CHECK(policy == VEIL_PQ_REQUIRED);
  for (int i = 0; i < 2; i++) {
    /* Slots 0 and 1: one is the leader's, the other the member's, keyed by the hybrid. */
    int leaders = 0, hybrids = 0;
    for (uint32_t slot = 0; slot < 2; slot++) {
      CHECK_OK(veil_session_key_delivery(all[i]->session, slot, &delivery));
      leaders += delivery == VEIL_KEY_DELIVERY_LEADER;
      hybrids += delivery == VEIL_KEY_DELIVERY_HYBRID;
    }
    CHECK(leaders == 1 && hybrids == 1);
  }
  CHECK_RESULT(veil_session_key_delivery(member.session, 77, &delivery), VEIL_RESULT_UNKNOWN_PARTICIPANT);
  printf("the member's key came in the hybrid box (policy required)\n");

  check_media(&member, &leader, now);
  check_media(&leader, &member, now);
  printf("media protected by one participant opens at the other, both ways\n");

  /* The leader's first key (mkSeqNum 1, itself only) was scheduled to retire in its protector
   * 10 s after the second arrived (whitepaper 3.7.6, v4.6); past that, media still flows under
   * the second, and the sessions' timers (heartbeats, key retirement) kept running. */
  CHECK(leader.retired_mk_seq == 1 && leader.retire_at > 1700000000000ull);
  pump(&board, all, &now, first_key_retired);
  printf("the leader's first key retired at +%llu ms\n", (unsigned long long)(leader.retire_at - 1700000000000ull));
  check_media(&member, &leader, now);

  /* Leaving posts a notice, ends the session and retires the linked protector's keys. */
  CHECK_OK(veil_session_leave(member.session, now));
  veil_event e;
  int left = 0;
  while (veil_session_poll_event(member.session, &e) == VEIL_RESULT_OK) {
    if (e.kind == VEIL_EVENT_LEFT) {
      left = 1;
      CHECK(e.left_reason == VEIL_LEFT_REQUESTED && e.protector_result == VEIL_RESULT_OK);
    }
  }
  CHECK(left);
  uint8_t buf[128];
  size_t len = 0;
  CHECK_RESULT(veil_protector_protect_into(member.protector, now, 0, (const uint8_t *)"x", 1, buf, sizeof buf, &len), VEIL_RESULT_NO_SEND_KEY);
  CHECK_RESULT(veil_session_handle_timeout(member.session, now), VEIL_RESULT_SESSION_ENDED);

  veil_session_counters counters;
  CHECK_OK(veil_session_get_counters(leader.session, &counters));
  CHECK(counters.messages_accepted > 0);

  for (size_t i = 0; i < board.count; i++) free(board.messages[i]);
  for (int i = 0; i < 2; i++) {
    veil_session_free(all[i]->session);
    veil_protector_free(all[i]->protector);
  }
  return 0;
}
