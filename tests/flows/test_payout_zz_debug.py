import sys, threading, time, collections, traceback
def sampler(stop, counts, own):
    while not stop.is_set():
        for tid, frame in sys._current_frames().items():
            if tid == own[0]:
                continue
            stack = traceback.extract_stack(frame)
            # skip idle waits
            top = stack[-1]
            if top.name in ("wait", "select", "_wait_for_tstate_lock", "accept", "poll", "readinto", "recv_into", "sleep", "serve_forever", "get") and ("threading" in top.filename or "selectors" in top.filename or "socket" in top.filename or "socketserver" in top.filename or "queue" in top.filename):
                continue
            key = " <- ".join(f"{f.filename.split('site-packages/')[-1].split('/work/main/')[-1]}:{f.name}" for f in stack[-1:-8:-1])
            counts[key] += 1
            for f in stack:
                counts["FILE " + f.filename.split('site-packages/')[-1].split('/')[0]] += 0
        time.sleep(0.005)
def test_dbg(world):
    counts = collections.Counter(); stop = threading.Event(); own = [None]
    th = threading.Thread(target=sampler, args=(stop, counts, own), daemon=True); th.start(); own[0] = th.ident
    for i in range(3):
        seller = world.seller()
        o = world.shipped(seller)
        world.customs(o, "cleared")
        world.wait_for(o["order_id"], "settled")
    stop.set(); th.join()
    # aggregate by package of the innermost non-stdlib frame
    with open("/tmp/prof.txt", "w") as f:
        for k, v in counts.most_common(40):
            print(v, k, file=f)
