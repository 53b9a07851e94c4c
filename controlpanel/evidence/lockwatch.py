"""Lock watch: who is waiting on the migration's locks right now, sampled while a step runs."""

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


def sample_locks(conn, migration_pid: int | None) -> dict:
    """One sample: sessions waiting on any lock, those blocked (directly or not) by the migration, its locks."""
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
    held = []
    if migration_pid:
        held = [
            {"lock": locktype, "mode": mode, "granted": granted, "relation": relname}
            for locktype, mode, granted, relname in conn.execute(HELD_SQL, (migration_pid,)).fetchall()
        ]
    return {
        "waiting": waiting,
        "blocked_by_migration": blocked_by_migration,
        "longest_wait_seconds": max((w["waiting_seconds"] for w in blocked_by_migration), default=0.0),
        "held": held,
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


class LockSummary:
    """Accumulates samples over a step: the worst wait and the number of samples with waiters."""

    def __init__(self):
        self.samples = 0
        self.samples_with_waiters = 0
        self.longest_wait_seconds = 0.0
        self.worst: dict | None = None

    def add(self, sample: dict) -> None:
        self.samples += 1
        if sample["blocked_by_migration"]:
            self.samples_with_waiters += 1
        if sample["longest_wait_seconds"] > self.longest_wait_seconds:
            self.longest_wait_seconds = sample["longest_wait_seconds"]
            self.worst = sample

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "samples_with_waiters": self.samples_with_waiters,
            "longest_wait_seconds": round(self.longest_wait_seconds, 3),
            "worst_sample": self.worst,
        }
