# The numpy peer of the benchmark harness (bench/lib/numpy.mjs): one persistent python3 process that reads
# JSON requests, one per line, on stdin and answers one JSON line each on stdout.
#   {"id": 1, "op": "exec", "code": "..."}           exec in the shared namespace; answers the value of
#                                                    the name `result` if the code set it (JSON-able)
#   {"id": 2, "op": "define", "key": "k", "stmt": "..."}  compiles stmt (an expression or statements) as a timer
#   {"id": 3, "op": "time", "key": "k", "reps": 5}    runs it reps times; answers the total milliseconds
# Timing is done here, so pipe latency is never counted against numpy.
import json
import sys
import time
import traceback

ns = {"__name__": "bench"}
timers = {}


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    req = json.loads(line)
    rid = req.get("id")
    try:
        op = req["op"]
        if op == "exec":
            ns.pop("result", None)
            exec(req["code"], ns)
            answer({"id": rid, "ok": True, "result": ns.get("result")})
        elif op == "define":
            src = "def __timer(__reps):\n    for __i in range(__reps):\n"
            src += "".join("        " + l + "\n" for l in req["stmt"].splitlines())
            exec(src, ns)
            timers[req["key"]] = ns["__timer"]
            answer({"id": rid, "ok": True, "result": None})
        elif op == "time":
            fn = timers[req["key"]]
            t0 = time.perf_counter()
            fn(int(req["reps"]))
            answer({"id": rid, "ok": True, "result": (time.perf_counter() - t0) * 1e3})
        else:
            raise ValueError("unknown op " + repr(op))
    except Exception as e:  # every failure goes back to the harness as a message
        answer({"id": rid, "ok": False, "error": "".join(traceback.format_exception_only(type(e), e)).strip()})
