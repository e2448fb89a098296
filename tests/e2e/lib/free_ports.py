"""Prints the first of N free TCP ports in a row on 127.0.0.1 (default 5): the
metrics ports of the four daemons and a listener, as deploy/run.sh numbers them.
Usage: python3 tests/e2e/lib/free_ports.py [N]"""
import random
import socket
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
for _ in range(200):
    base = random.randint(20000, 60000)
    held = []
    try:
        for i in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", base + i))
            held.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in held:
            s.close()
else:
    sys.exit("free_ports: no run of free ports found")
