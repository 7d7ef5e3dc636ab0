#!/usr/bin/env python3
"""What a VNC viewer moves for tether-bench's content, to set beside tether-bench's figures.

For each VNC server (x11vnc, TigerVNC's x0vncserver) and each scenario, starts its own Xvfb, the
same windows as tether-bench's scenario of that name (same xterm fonts and colours, the same
coloured prompt, `less` over the same text at the same pinned commit, the same generated
photographs shown with one X CopyArea), the server, and a minimal RFB 3.8 viewer that asks for
ZRLE and CopyRect and asks for the next incremental update as soon as one arrives, as vncviewer
does. An event is a keystroke, a Page Down or a photograph; it ends once nothing has arrived for
a quiet spell after it (0.15 s after a keystroke, 0.3 s after a page, 1 s after a photograph).

Per event it reports the TCP payload both ways (`bytes_per_event`, what tether-bench's
`wire_bytes_per_event` counts for QUIC: UDP payload both ways) and that plus 52 B of IPv4 and TCP
headers (with timestamps) for every segment either way (`ip_bytes_per_event`, beside
tether-bench's `wire_ip_bytes_per_event`). Segments are counted by `ss`.

Needs: Xvfb, xterm, xdotool, xset, ss, x11vnc, x0vncserver (apt: xvfb xterm xdotool
x11-xserver-utils iproute2 x11vnc tigervnc-scraping-server), and numpy and python-xlib (pip).

    python3 tests/vnc/side_by_side.py --servers x11vnc,x0vncserver \\
        --scenarios typing,scroll,typing-aa,scroll-aa,photo --json out.jsonl
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
# The commit whose files tether-bench shows (tests/src/bin/tether-bench/corpus.rs).
PIN = 'f44f7ae78c147f6c4b715d7f3c2667806534cf10'
W, H = 1920, 1080
KEYWORDS = set('fn let pub use impl struct enum match if else for while return mut self Self mod '
               'const async await loop in where'.split())
COLOUR_PROMPT = ("ls --color=always /usr/bin | head -n 40; "
                 "printf '\\033[1;32mcustomer@desk\\033[0m:\\033[1;34m~/project\\033[0m$ '; "
                 "exec cat")
TCP_IP_HEADERS = 52


def git(*args):
    return subprocess.run(['git', '-C', REPO, *args], check=True, capture_output=True,
                          text=True).stdout


# The content, as tether-bench's scenarios.rs makes it.

def colour_code(code):
    out, word, in_string = [], [], False

    def flush():
        w = ''.join(word)
        if w in KEYWORDS:
            out.append(f'\x1b[35m{w}\x1b[0m')
        elif w[:1].isdigit():
            out.append(f'\x1b[36m{w}\x1b[0m')
        else:
            out.append(w)
        word.clear()
    for c in code:
        if c == '"':
            flush()
            out.append('"\x1b[0m' if in_string else '\x1b[32m"')
            in_string = not in_string
        elif not in_string and (c.isalnum() or c == '_'):
            word.append(c)
        else:
            flush()
            out.append(c)
    flush()
    if in_string:
        out.append('\x1b[0m')
    return ''.join(out)


def colour_line(line):
    at = line.find('//')
    if at >= 0:
        return f'{colour_code(line[:at])}\x1b[90m{line[at:]}\x1b[0m'
    return colour_code(line)


def coloured_source():
    out = []
    for d in ['protocol/src', 'relay/src/core', 'agent-console/src', 'customer-host/src']:
        files = sorted(p for p in git('ls-tree', '--name-only', PIN, d + '/').splitlines()
                       if p.endswith('.rs'))
        for f in files:
            for line in git('show', f'{PIN}:{f}').splitlines():
                out.append(colour_line(line) + '\n')
    return ''.join(out)


def words_file():
    words = ['remote', 'support', 'latency', 'tether', 'screen', 'frame', 'session', 'agent',
             'customer', 'relay', 'quic', 'tile']
    out = []
    for i in range(6000):
        n = 4 + i * 7 % 14
        line = [words[(i * 31 + j * 17) % len(words)] for j in range(n)]
        out.append(f"{i:5}  {' '.join(line)}\n")
    return ''.join(out)


def photo(seed):
    """tether-bench's `photo(seed)`: value noise in five octaves per channel, with grain."""
    import numpy as np
    mask = (1 << 64) - 1
    rng = (seed * 6364136223846793005 + 1442695040888963407) & mask

    def nxt():
        nonlocal rng
        rng ^= (rng << 13) & mask
        rng ^= rng >> 7
        rng ^= (rng << 17) & mask
        return rng
    acc = np.zeros((H, W, 3), np.float32)
    ys, xs = np.arange(H), np.arange(W)
    one = np.float32(1.0)
    for octave, cell in enumerate([256, 96, 40, 16, 6]):
        amp = np.float32([90.0, 60.0, 35.0, 18.0, 9.0][octave])
        gw, gh = W // cell + 2, H // cell + 2
        gy, fy = ys // cell, ((ys % cell).astype(np.float32) / np.float32(cell))[:, None]
        gx, fx = xs // cell, ((xs % cell).astype(np.float32) / np.float32(cell))[None, :]
        for c in range(3):
            grid = (np.array([nxt() % 1000 for _ in range(gw * gh)], np.float32)
                    / np.float32(1000.0) - np.float32(0.5)).reshape(gh, gw)
            v = (grid[gy][:, gx] * (one - fx) * (one - fy) + grid[gy][:, gx + 1] * fx * (one - fy)
                 + grid[gy + 1][:, gx] * (one - fx) * fy + grid[gy + 1][:, gx + 1] * fx * fy)
            acc[:, :, c] += v * amp
    grain = np.array([nxt() % 9 for _ in range(W * H * 3)], np.float32).reshape(H, W, 3)
    out = np.zeros((H, W, 4), np.uint8)
    out[:, :, :3] = np.clip(np.float32(128.0) + acc + (grain - np.float32(4.0)), 0, 255)
    return out


# A VNC viewer that counts.

class Viewer:
    def __init__(self, port):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(('127.0.0.1', port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f'no VNC server listens on port {port}')
                time.sleep(0.1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lock = threading.Lock()
        self.rx = self.tx = 0
        self.last = time.monotonic()
        self.buf = b''
        self.read(12)
        self.send(b'RFB 003.008\n')
        types = self.read(self.read(1)[0])
        if 1 not in types:
            raise SystemExit(f'the server offers no security type None: {list(types)}')
        self.send(b'\x01')
        if struct.unpack('>I', self.read(4))[0] != 0:
            raise SystemExit('the server refused security type None')
        self.send(b'\x01')  # shared
        self.w, self.h = struct.unpack('>HH', self.read(4))
        pf = self.read(16)
        self.bpp = pf[0] // 8
        self.read(struct.unpack('>I', self.read(4))[0])
        self.send(struct.pack('>BxH3i', 2, 3, 16, 1, 0))  # ZRLE, CopyRect, Raw
        self.request(False)
        threading.Thread(target=self.run, daemon=True).start()

    def send(self, data):
        self.sock.sendall(data)
        with self.lock:
            self.tx += len(data)

    def read(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError
            with self.lock:
                self.rx += len(data)
                self.last = time.monotonic()
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, incremental):
        self.send(struct.pack('>BBHHHH', 3, int(incremental), 0, 0, self.w, self.h))

    def run(self):
        try:
            while True:
                kind = self.read(1)[0]
                if kind == 0:  # FramebufferUpdate
                    self.read(1)
                    (n,) = struct.unpack('>H', self.read(2))
                    for _ in range(n):
                        _, _, w, h, enc = struct.unpack('>HHHHi', self.read(12))
                        if enc == 0:
                            self.read(w * h * self.bpp)
                        elif enc == 1:
                            self.read(4)
                        elif enc == 16:
                            self.read(struct.unpack('>I', self.read(4))[0])
                        else:
                            raise SystemExit(f'the server sent encoding {enc}, not asked for')
                    self.request(True)
                elif kind == 1:  # SetColourMapEntries
                    self.read(3)
                    self.read(struct.unpack('>H', self.read(2))[0] * 6)
                elif kind == 3:  # ServerCutText
                    self.read(3)
                    self.read(struct.unpack('>I', self.read(4))[0])
                elif kind != 2:  # Bell has no body
                    raise SystemExit(f'the server sent message type {kind}')
        except (EOFError, OSError):
            pass

    def total(self):
        with self.lock:
            return self.rx + self.tx

    def segments(self):
        """TCP segments the viewer's socket sent and received so far."""
        port = self.sock.getsockname()[1]
        out = subprocess.run(['ss', '-tinH', 'src', f'127.0.0.1:{port}'], capture_output=True,
                             text=True, check=True).stdout
        return sum(int(out.split(k + ':')[1].split()[0]) for k in ('segs_in', 'segs_out'))

    def quiet(self, spell, limit):
        """Returns once nothing has arrived for `spell` seconds since the call, or after
        `limit` seconds."""
        start = time.monotonic()
        while time.monotonic() < start + limit:
            with self.lock:
                if time.monotonic() - max(self.last, start) >= spell:
                    return
            time.sleep(0.01)


# The desktop.

def env(display):
    return {**os.environ, 'DISPLAY': display}


def xdotool(display, *args):
    subprocess.run(['xdotool', *args], env=env(display), check=True)


def xterm(display, aa, geometry, cmd):
    font = ['-fa', 'Monospace', '-fs', '11'] if aa else []
    return subprocess.Popen(['xterm', *font, '-geometry', geometry, '-bg', 'white', '-fg', 'black',
                             '+sb', '-e', *cmd], env=env(display), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def vnc_server(kind, display, port):
    if kind == 'x11vnc':
        cmd = ['x11vnc', '-display', display, '-rfbport', str(port), '-localhost', '-nopw',
               '-forever', '-shared', '-quiet']
    elif kind == 'x0vncserver':
        cmd = ['x0vncserver', '-display', display, '-rfbport', str(port), '-SecurityTypes',
               'None', '-localhost']
    else:
        raise SystemExit(f'unknown server {kind}')
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def photos(viewer, display, pictures):
    from Xlib import X, display as xdisplay
    conn = xdisplay.Display(display)
    root = conn.screen().root
    gc = root.create_gc()
    pixmaps = []
    for px in pictures:
        pm = root.create_pixmap(W, H, 24)
        for y in range(0, H, 30):  # a request holds at most 256 kB
            pm.put_image(gc, 0, y, W, 30, X.ZPixmap, 24, 0, px[y:y + 30].tobytes())
        pixmaps.append(pm)
    conn.sync()
    per = []
    for i in range(8):
        before = viewer.total()
        root.copy_area(gc, pixmaps[i % 2], 0, 0, W, H, 0, 0)
        conn.sync()
        viewer.quiet(1.0, 20)
        per.append(viewer.total() - before)
    conn.close()
    return per


def scenario(kind, name, display_no, pictures):
    display = f':{display_no}'
    procs = [subprocess.Popen(['Xvfb', display, '-screen', '0', f'{W}x{H}x24', '-noreset',
                               '-nolisten', 'tcp'], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    text = tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(['xset', '-display', display, 'q'],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise SystemExit(f'Xvfb {display} did not start (is the display in use?)')
            time.sleep(0.05)
        port = 5900 + display_no
        procs.append(vnc_server(kind, display, port))
        viewer = Viewer(port)
        viewer.quiet(1.0, 10)
        if name == 'typing':
            procs.append(xterm(display, False, '160x50+0+0', ['cat']))
        elif name == 'typing-aa':
            procs.append(xterm(display, True, '160x50+0+0', ['sh', '-c', COLOUR_PROMPT]))
        elif name == 'scroll':
            text.write(words_file())
            text.close()
            procs.append(xterm(display, False, '160x60+0+0', ['less', text.name]))
        elif name == 'scroll-aa':
            text.write(coloured_source())
            text.close()
            procs.append(xterm(display, True, '160x50+0+0', ['less', '-R', text.name]))
        elif name != 'photo':
            raise SystemExit(f'unknown scenario {name}')
        viewer.quiet(1.5, 20)
        xdotool(display, 'mousemove', '400', '300')
        viewer.quiet(0.5, 5)
        segments = viewer.segments()
        if name == 'photo':
            per = photos(viewer, display, pictures)
        else:
            keys = 'abcdefghijklmnopqrstuvwxyz0123456789'
            per = []
            for i in range(200 if name.startswith('typing') else 50):
                before = viewer.total()
                if name.startswith('typing'):
                    xdotool(display, 'key', keys[i % len(keys)])
                    viewer.quiet(0.15, 5)
                else:
                    xdotool(display, 'key', 'space')
                    viewer.quiet(0.3, 5)
                per.append(viewer.total() - before)
        n = len(per)
        segs = (viewer.segments() - segments) / n
        return {'server': kind, 'scenario': name, 'events': n,
                'bytes_per_event': sum(per) / n, 'median_bytes': sorted(per)[n // 2],
                'segments_per_event': segs,
                'ip_bytes_per_event': sum(per) / n + TCP_IP_HEADERS * segs}
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        os.unlink(text.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--servers', default='x11vnc,x0vncserver')
    ap.add_argument('--scenarios', default='typing,scroll,typing-aa,scroll-aa,photo')
    ap.add_argument('--display', type=int, default=77, help='the Xvfb display number to use')
    ap.add_argument('--json', help='append one JSON line per result to this file')
    a = ap.parse_args()
    names = a.scenarios.split(',')
    pictures = [photo(1), photo(2)] if 'photo' in names else []
    for kind in a.servers.split(','):
        for name in names:
            r = scenario(kind, name, a.display, pictures)
            print(json.dumps(r), flush=True)
            if a.json:
                with open(a.json, 'a') as f:
                    f.write(json.dumps(r) + '\n')


if __name__ == '__main__':
    sys.exit(main())
