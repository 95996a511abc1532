"""Memory of the nightly job's interaction reading (bench/README.md, "feedback-1m"): writes ROWS
synthetic interactions (USERS distinct users, demo-v1's items) to a CSV, then streams them in with
rebeca_train.feedback.stream_interactions and prints the peak RSS before and after, and the time.
Usage: OMP_NUM_THREADS=1 /usr/bin/python3 training/bench_feedback_memory.py [ROWS] [USERS]"""
import json
import os
import random
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rebeca_train.feedback import stream_interactions  # noqa: E402

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
users = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
world = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "demo-v1", "world")
ids = open(os.path.join(world, "item_ids.txt")).read().split()
rng = random.Random(0)
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "interactions.csv")
    with open(path, "w") as f:
        f.write("user_id,item_id,like\n")
        for _ in range(rows):
            f.write(f"user-{rng.randrange(users):07d},{ids[rng.randrange(len(ids))]},{rng.randrange(2)}\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.time()
    got_users, U, _, _ = stream_interactions(path, {i: n for n, i in enumerate(ids)})
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": len(U), "users": len(got_users), "peak_rss_mb_before": round(before, 1),
                  "peak_rss_mb_after": round(after, 1), "added_mb": round(after - before, 1), "seconds": round(time.time() - t0, 1)}))
