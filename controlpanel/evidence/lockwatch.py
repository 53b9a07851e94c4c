"""Lock watch, sampled while a step runs: who waits on the migration's locks, and whom the migration waits on."""

import time

# Waiters are found in pg_locks, which every role may read; pg_stat_activity hides another role's state,
# wait event and query unless the role has pg_read_all_stats, so those columns are only decoration here.
LOCK_SAMPLE_SQL = """
SELECT w.pid,
       pg_blocking_pids(w.pid) AS blocked_by,
       coalesce(a.wait_event_type || ':' || a.wait_event, 'Lock:' || w.locktype) AS wait_event,
       coalesce(a.state, 'waiting') AS state,
       extract(epoch FROM now() - coalesce(w.waitstart, a.query_start, a.xact_start, now())) AS waiting_seconds,
       CASE WHEN a.query = '<insufficient privilege>' OR a.query IS NULL THEN NULL ELSE left(a.query, 200) END,
       a.application_name
FROM (SELECT DISTINCT ON (l.pid) l.pid, l.locktype, l.waitstart FROM pg_locks l
      WHERE NOT l.granted AND l.pid IS NOT NULL ORDER BY l.pid, l.waitstart) w
JOIN pg_stat_activity a ON a.pid = w.pid  -- pid and database are visible to every role
WHERE a.datname = current_database() AND cardinality(pg_blocking_pids(w.pid)) > 0
ORDER BY waiting_seconds DESC
LIMIT 50
"""
QUERY_HIDDEN = "query hidden: the role lacks pg_read_all_stats"

HELD_SQL = """
SELECT l.locktype, l.mode, l.granted, c.relname
FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = %s AND l.locktype = 'relation' AND c.relnamespace <> 'pg_catalog'::regnamespace
ORDER BY c.relname, l.mode
LIMIT 50
"""


# The sessions the migration's backend is blocked by, while it waits for a lock (not while it sleeps between
# two attempts of a retry loop: then nothing blocks it, and the retry notices tell the story). Found through
# pg_locks like the waiters above: another role's state and query may be hidden.
MIGRATION_WAIT_SQL = """
SELECT b.pid,
       b.application_name,
       coalesce(b.state, 'state hidden'),
       CASE WHEN b.query = '<insufficient privilege>' OR b.query IS NULL THEN NULL ELSE left(b.query, 200) END,
       extract(epoch FROM now() - b.xact_start) AS transaction_seconds,
       extract(epoch FROM now() - coalesce(w.waitstart, now())) AS waiting_seconds
FROM pg_locks w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE w.pid = %s AND NOT w.granted
ORDER BY b.xact_start NULLS LAST
LIMIT 10
"""


def _seconds(value) -> float:
    return round(float(value or 0), 1)


def sample_locks(conn, migration_pid: int | None) -> dict:
    """One sample: sessions waiting on any lock, those blocked (directly or not) by the migration, its locks
    (granted or still requested), and the sessions the migration itself waits on."""
    waiting = [
        {
            "pid": pid,
            "blocked_by": list(blocked_by),
            "wait_event": wait_event,
            "state": state,
            "waiting_seconds": round(float(seconds or 0), 3),
            "query": query if query is not None else QUERY_HIDDEN,
            "query_visible": query is not None,
            "application": app,
        }
        for pid, blocked_by, wait_event, state, seconds, query, app in conn.execute(LOCK_SAMPLE_SQL).fetchall()
    ]
    blocked_by_migration = _blocked_by(waiting, migration_pid) if migration_pid else []
    held, waits_on = [], []
    if migration_pid:
        held = [
            {"lock": locktype, "mode": mode, "granted": granted, "relation": relname}
            for locktype, mode, granted, relname in conn.execute(HELD_SQL, (migration_pid,)).fetchall()
        ]
        waits_on = [
            {"pid": pid, "application": app or "", "state": state,
             "query": query if query is not None else QUERY_HIDDEN,
             "transaction_seconds": _seconds(xact), "waiting_seconds": _seconds(waited)}
            for pid, app, state, query, xact, waited in conn.execute(MIGRATION_WAIT_SQL, (migration_pid,)).fetchall()
        ]
    return {
        "waiting": waiting,
        "blocked_by_migration": blocked_by_migration,
        "longest_wait_seconds": max((w["waiting_seconds"] for w in blocked_by_migration), default=0.0),
        "held": [lock for lock in held if lock["granted"]],
        "requested": [lock for lock in held if not lock["granted"]],
        "migration_waits_on": waits_on,
        "migration_wait_seconds": 0.0,  # LockSummary.add measures the wait across samples
    }


def _blocked_by(waiting: list[dict], root_pid: int) -> list[dict]:
    """Sessions whose blocking tree leads to root_pid (directly or through other waiters)."""
    by_pid = {w["pid"]: w for w in waiting}
    result, frontier = [], {root_pid}
    seen = set()
    while frontier:
        next_frontier = set()
        for w in waiting:
            if w["pid"] not in seen and frontier.intersection(w["blocked_by"]):
                seen.add(w["pid"])
                result.append(by_pid[w["pid"]] | {"direct": root_pid in w["blocked_by"]})
                next_frontier.add(w["pid"])
        frontier = next_frontier
    return result


# A retry loop sleeps between its short lock attempts (nothing blocks it then): sightings of the migration waiting
# on one statement less than this apart are one wait.
WAIT_EPISODE_GAP_SECONDS = 5.0


class LockSummary:
    """Accumulates samples over a step: the worst wait on the migration, the migration's longest wait."""

    def __init__(self):
        self.samples = 0
        self.samples_with_waiters = 0
        self.longest_wait_seconds = 0.0
        self.worst: dict | None = None
        # The other direction: the migration blocked by another session.
        self.samples_migration_waiting = 0
        self.migration_wait_seconds = 0.0
        self.migration_blockers: list[dict] = []
        self.lock_retries = 0  # set by the runner from the script's retries and the bundle's retry NOTICEs
        self.episode: dict | None = None

    def add(self, sample: dict, statement: str = "", now: float | None = None) -> dict:
        """Count one sample; returns it as the page shows it (a wait seen moments ago on this statement kept)."""
        now = time.monotonic() if now is None else now
        episode = self.episode
        ongoing = episode is not None and episode["statement"] == statement and now - episode["last"] < \
            WAIT_EPISODE_GAP_SECONDS
        if sample.get("migration_waits_on"):
            if not ongoing or episode is None:  # (ongoing implies an episode)
                began = min(max(w["waiting_seconds"] for w in sample["migration_waits_on"]), 1.0)
                episode = self.episode = {"statement": statement, "first": now - began}
            episode.update(last=now, blockers=sample["migration_waits_on"])
            sample["migration_wait_seconds"] = round(now - episode["first"], 1)
        elif ongoing and episode is not None:
            sample = sample | {"migration_waits_on": episode["blockers"],
                               "migration_wait_seconds": round(episode["last"] - episode["first"], 1),
                               "wait_seen_seconds_ago": round(now - episode["last"], 1)}
        self._count(sample)
        return sample

    def _count(self, sample: dict) -> None:
        self.samples += 1
        if sample["blocked_by_migration"]:
            self.samples_with_waiters += 1
        if sample["longest_wait_seconds"] > self.longest_wait_seconds:
            self.longest_wait_seconds = sample["longest_wait_seconds"]
            self.worst = sample
        if sample.get("migration_waits_on") and "wait_seen_seconds_ago" not in sample:
            self.samples_migration_waiting += 1
            if sample["migration_wait_seconds"] >= self.migration_wait_seconds:
                self.migration_wait_seconds = sample["migration_wait_seconds"]
                self.migration_blockers = sample["migration_waits_on"]

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "samples_with_waiters": self.samples_with_waiters,
            "longest_wait_seconds": round(self.longest_wait_seconds, 3),
            "worst_sample": self.worst,
            "samples_migration_waiting": self.samples_migration_waiting,
            "migration_wait_seconds": round(self.migration_wait_seconds, 1),
            "migration_blockers": self.migration_blockers,
            "lock_retries": self.lock_retries,
        }
