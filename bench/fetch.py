"""Benchmark ``medcat fetch`` against PhysioNet's ``wget -r`` and ``aria2c -j 8``, side by side.

Not a test: run it by hand, then copy the table into ``docs/benchmarks.md`` (## Fetch).

What it does, in one run:

1. Builds PhysioNet-like trees (``files/<slug>/1.0.0/...`` with a one-space ``SHA256SUMS.txt``)
   under ``--work`` (default ``/work/bench-fetch``): ``small`` 5,000 x 100 kB in 50 folders,
   ``large`` 200 x 8 MB, ``noop`` 10,000 x 10 kB. Built once, reused by later runs.
2. Starts Debian's nginx itself (``apt-get install -y nginx wget aria2``) on 127.0.0.1 with a
   temporary config: HTTP Basic auth on ``/files/`` (htpasswd ``{PLAIN}``), autoindex listings
   for ``wget -r``, ``sendfile on``, ``worker_processes auto``; a second port serves the same
   tree with ``limit_rate`` so that medcat's default number of connections shares about 100 MB/s
   (a realistic fast link).
   nginx is stopped when the script exits.
3. Times, for each destination file system (ext4 under ``--work``, tmpfs under ``/dev/shm``):
   ``medcat fetch`` (hashing every byte), ``medcat fetch --no-hash``, the documented
   ``wget -r -N -c -np --user --password``, ``wget`` followed by ``sha256sum -c``, and
   ``aria2c -j8 -i list`` with a ``checksum=sha-256=`` per file. Then a no-op re-run of a
   completed 10,000-file dataset (medcat vs ``wget -r -N``), hashing vs not on the rate-limited
   port, and peak RSS of medcat for each set. Also measures the per-file CPU of candidate HTTP
   client stacks (requests, urllib3, http.client) on 2,000 small files, which is how the engine's
   stack was chosen.

Usage::

    /work/venv/bin/python bench/fetch.py [--work DIR] [--quick] [--json results.json]

``--quick`` shrinks every set tenfold (for trying the script, not for figures).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

USER, PASSWORD = "bench", "bench-Pa55"
PYTHON = sys.executable
SETS = {"small": (5000, 100_000), "large": (200, 8_000_000), "noop": (10_000, 10_000), "netlarge": (24, 8_000_000)}
#: The network-shaped link of ``--only net`` (bench/latency_proxy.py): round trip and shared rate.
NET_RTT_MS, NET_MBIT = 40.0, 100.0
#: File counts of the memory / no-op section (``--only scale``): MIMIC-CXR-shaped paths.
SCALE_COUNTS = (10_000, 100_000)


@dataclass
class Run:
    """One timed command."""

    label: str
    wall_s: float
    cpu_s: float
    rss_mb: float
    ok: bool
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# trees


def build_tree(root: Path, slug: str, count: int, size: int) -> Path:
    """Write ``count`` files of ``size`` bytes in 50 folders plus SHA256SUMS.txt (once)."""
    base = root / "files" / slug / "1.0.0"
    done = base / ".built"
    if done.exists():
        return base
    if base.exists():
        shutil.rmtree(base)
    lines = []
    block = os.urandom(1 << 20)
    for i in range(count):
        rel = f"p{i % 50:02d}/f{i:05d}.dat"
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # Distinct content per file without generating gigabytes of randomness.
        head = hashlib.sha256(f"{slug}-{i}".encode()).digest()
        data = (head + block * (size // len(block) + 1))[:size]
        target.write_bytes(data)
        lines.append((rel, hashlib.sha256(data).hexdigest()))
    (base / "SHA256SUMS.txt").write_text("".join(f"{h} {p}\n" for p, h in sorted(lines)))
    done.write_text("")
    return base


def checksums(base: Path) -> list[tuple[str, str]]:
    out = []
    for line in (base / "SHA256SUMS.txt").read_text().splitlines():
        digest, _, path = line.partition(" ")
        out.append((path, digest))
    return out


# --------------------------------------------------------------------------------------------
# nginx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx(root: Path, work: Path, limit_rate: str) -> Iterator[tuple[int, int]]:
    """Run nginx on two loopback ports (full speed, rate-limited); stop it on exit."""
    if shutil.which("nginx") is None:
        sys.exit("nginx is missing: apt-get install -y nginx wget aria2")
    conf_dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=work))
    conf_dir.chmod(0o755)  # nginx workers run as an unprivileged user and read the htpasswd file
    (conf_dir / "htpasswd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    fast, slow = free_port(), free_port()
    site = f"""
        root {root};
        autoindex on;
        location /files/ {{ auth_basic "physionet"; auth_basic_user_file {conf_dir}/htpasswd; }}
    """
    (conf_dir / "nginx.conf").write_text(f"""
worker_processes auto;
daemon off;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {conf_dir}/tmp;
  proxy_temp_path {conf_dir}/tmp; fastcgi_temp_path {conf_dir}/tmp;
  uwsgi_temp_path {conf_dir}/tmp; scgi_temp_path {conf_dir}/tmp;
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{fast}; {site} }}
  server {{ listen 127.0.0.1:{slow}; limit_rate {limit_rate}; {site} }}
}}
""")
    (conf_dir / "tmp").mkdir()
    proc = subprocess.Popen(["nginx", "-c", str(conf_dir / "nginx.conf"), "-p", str(conf_dir)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", fast), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit(f"nginx did not start; see {conf_dir}/error.log")
                time.sleep(0.05)
        yield fast, slow
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(conf_dir, ignore_errors=True)


@contextmanager
def latency_proxy(upstream_port: int, rtt_ms: float, mbit: float) -> Iterator[int]:
    """Run bench/latency_proxy.py in front of ``upstream_port``; yield its port; stop it on exit."""
    script = Path(__file__).with_name("latency_proxy.py")
    proc = subprocess.Popen(
        [PYTHON, str(script), "--upstream", f"127.0.0.1:{upstream_port}", "--rtt-ms", str(rtt_ms), "--mbit", str(mbit)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            sys.exit("the latency proxy did not start")
        yield int(line[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def build_scale_tree(root: Path, count: int) -> Path:
    """Write ``count`` tiny files with MIMIC-CXR-shaped paths (~78 characters) plus SHA256SUMS.txt (once)."""
    base = root / "files" / f"scale{count // 1000}k" / "1.0.0"
    done = base / ".built"
    if done.exists():
        return base
    lines = []
    for i in range(count):
        p, s = 10_000_000 + i // 8, 50_000_000 + i // 3
        h = hashlib.md5(str(i).encode()).hexdigest() + hashlib.md5(str(-i).encode()).hexdigest()
        rel = f"files/p{str(p)[:2]}/p{p}/s{s}/" + "-".join(h[k:k + 8] for k in range(0, 40, 8)) + ".dcm"
        data = f"{i}\n".encode()
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()} {rel}\n")
    (base / "SHA256SUMS.txt").write_text("".join(lines))
    done.touch()
    return base


# --------------------------------------------------------------------------------------------
# timing


def timed(label: str, cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run a command under /usr/bin/time; return wall, user+sys CPU and peak RSS."""
    stats = Path(tempfile.mktemp(prefix="time-"))
    full = ["/usr/bin/time", "-o", str(stats), "-f", "%U %S %M", *cmd]
    started = time.perf_counter()
    proc = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    user, system, rss_kb = stats.read_text().split()[-3:]
    stats.unlink()
    run = Run(label, wall, float(user) + float(system), int(rss_kb) / 1024, proc.returncode == 0)
    if proc.stdout.strip().startswith("{"):
        try:
            report = json.loads(proc.stdout)
            run.extra["engine_s"] = float(report.get("seconds", 0.0))
        except ValueError:
            pass
    if not run.ok:
        run.note = (proc.stderr or proc.stdout).strip().splitlines()[-1][:200] if (proc.stderr or proc.stdout).strip() else ""
    return run


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def medcat_env(registry: Path, home: Path) -> dict[str, str]:
    return dict(
        os.environ,
        MEDCAT_REGISTRY=str(registry),
        MEDCAT_HOME=str(home),
        PHYSIONET_USERNAME=USER,
        PHYSIONET_PASSWORD=PASSWORD,
    )


#: ``python -m medcat_data`` as shipped imports every command module (normalize pulls in
#: ``datasets``/``pandas``); this runs the same fetch command without the others, i.e. what
#: ``medcat fetch`` costs once the CLI loads its commands lazily.
FETCH_ONLY = "import sys; from medcat_data.commands.fetch import fetch_cmd; fetch_cmd(sys.argv[1:], prog_name='medcat fetch')"


def medcat(label: str, slug: str, port: int, dest: Path, env: dict[str, str], *extra: str, cli: bool = True) -> Run:
    args = [f"bench-{slug}", "--mirror", f"http://127.0.0.1:{port}", "--dest", str(dest), "--json", *extra]
    head = [PYTHON, "-m", "medcat_data", "fetch"] if cli else [PYTHON, "-c", FETCH_ONLY]
    run = timed(label, head + args, env=env)
    if "--no-hash" in extra and not run.ok and "unverified" in run.note:
        run.ok, run.note = True, "exit 1 by design: files recorded as unverified"
    return run


def wget(label: str, slug: str, port: int, dest: Path) -> Run:
    cmd = ["wget", "-r", "-N", "-c", "-np", "--user", USER, "--password", PASSWORD, "-q",
           f"http://127.0.0.1:{port}/files/{slug}/1.0.0/"]
    return timed(label, cmd, cwd=dest)


def sha256sum_check(label: str, slug: str, dest: Path) -> Run:
    folder = next(dest.glob(f"*/files/{slug}/1.0.0"))  # wget -r keeps host:port/files/...
    return timed(label, ["sha256sum", "-c", "--quiet", "SHA256SUMS.txt"], cwd=folder)


def aria2(label: str, slug: str, port: int, dest: Path, base: Path) -> Run:
    listing = dest.parent / f"{dest.name}-aria2.txt"
    with listing.open("w") as fh:
        for rel, digest in checksums(base):
            folder, _, name = rel.rpartition("/")
            fh.write(f"http://127.0.0.1:{port}/files/{slug}/1.0.0/{rel}\n  dir={dest / folder}\n  out={name}\n"
                     f"  checksum=sha-256={digest}\n")
    cmd = ["aria2c", "-q", "-j8", "-x1", "-i", str(listing), "--http-user", USER, "--http-passwd", PASSWORD,
           "--check-integrity=true", "--file-allocation=none", "--auto-file-renaming=false", "--allow-overwrite=true",
           "--console-log-level=error", "--summary-interval=0"]
    run = timed(label, cmd)
    listing.unlink()
    return run


# --------------------------------------------------------------------------------------------
# client stacks


def client_stacks(port: int, base: Path, slug: str, n: int, dest_root: Path) -> list[Run]:
    """Per-file CPU of requests, urllib3, http.client and medcat's wire client (one thread, so
    that thread switching does not blur the per-request cost), streaming + sha256 + write."""
    import base64
    import http.client

    import requests
    import urllib3

    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    paths = [rel for rel, _ in checksums(base)][:n]

    def run(label: str, factory: Callable[[], Callable[[str, Path], None]]) -> Run:
        dest = fresh(dest_root / "stack")
        for i in range(50):
            (dest / f"p{i:02d}").mkdir()
        it = iter(paths)
        lock = threading.Lock()

        errors: list[BaseException] = []

        def worker() -> None:
            get = factory()
            while True:
                with lock:
                    rel = next(it, None)
                if rel is None:
                    return
                try:
                    get(f"/files/{slug}/1.0.0/{rel}", dest / rel)
                except Exception as err:  # noqa: BLE001 - reported below
                    errors.append(err)
                    return

        c0, t0 = time.process_time(), time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        note = f"{len(errors)} worker(s) failed: {errors[0]!r}" if errors else ""
        return Run(label, wall, cpu, 0.0, not errors, note, extra={"cpu_ms_per_file": 1000 * cpu / len(paths)})

    def requests_factory() -> Callable[[str, Path], None]:
        session = requests.Session()
        session.auth = (USER, PASSWORD)

        def get(url: str, path: Path) -> None:
            with session.get(f"http://127.0.0.1:{port}{url}", stream=True) as r, path.open("wb") as fh:
                h = hashlib.sha256()
                for chunk in r.iter_content(1 << 20):
                    h.update(chunk)
                    fh.write(chunk)
        return get

    def urllib3_factory() -> Callable[[str, Path], None]:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, headers={"Authorization": auth})

        def get(url: str, path: Path) -> None:
            r = pool.request("GET", url, preload_content=False)
            h = hashlib.sha256()
            with path.open("wb") as fh:
                for chunk in r.stream(1 << 20):
                    h.update(chunk)
                    fh.write(chunk)
            r.release_conn()
        return get

    def httpclient_factory() -> Callable[[str, Path], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def get(url: str, path: Path) -> None:
            conn.request("GET", url, headers={"Authorization": auth})
            r = conn.getresponse()
            h = hashlib.sha256()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            while chunk := r.read1(1 << 20):
                h.update(chunk)
                os.write(fd, chunk)
            r.close()  # done: the connection is kept alive for the next request
            os.close(fd)
        return get

    def wire_factory() -> Callable[[str, Path], None]:
        from medcat_data.loaders.transports.wire import Connection

        conn = Connection("http", "127.0.0.1", port, connect_timeout_s=20, read_timeout_s=60)
        view = memoryview(bytearray(1 << 20))

        def get(url: str, path: Path) -> None:
            r = conn.get(url, {"Authorization": auth})
            h = hashlib.sha256()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            while n := r.readinto1(view):
                h.update(view[:n])
                os.write(fd, view[:n])
            r.finish()
            os.close(fd)
        return get

    return [
        run("requests.Session per thread", requests_factory),
        run("urllib3 pool per thread", urllib3_factory),
        run("http.client per thread", httpclient_factory),
        run("medcat wire.Connection per thread", wire_factory),
    ]


# --------------------------------------------------------------------------------------------
# main


def median(runs: list[Run]) -> Run:
    """Return the run with the median wall time (CPU and RSS of that same run)."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    chosen = ordered[len(ordered) // 2]
    chosen.extra["min_s"] = ordered[0].wall_s
    chosen.extra["max_s"] = ordered[-1].wall_s
    chosen.ok = all(r.ok for r in runs)
    return chosen


def settle(folder: Path, seconds: float) -> None:
    """Delete outputs of an earlier run, then give ext4 time to forget the freed inodes."""
    if folder.exists() and any(folder.iterdir()):
        print(f"deleting old outputs in {folder}; waiting {seconds:.0f} s for ext4 to settle", file=sys.stderr)
        shutil.rmtree(folder)
        time.sleep(seconds)
    folder.mkdir(parents=True, exist_ok=True)


def compare(slug: str, fs_name: str, fs_root: Path, port: int, env: dict[str, str], base: Path, repeat: int) -> list[Run]:
    """Run every tool ``repeat`` times, interleaved (so drift hits all alike); return medians.

    On ext4 every run writes into a new folder and nothing is deleted until the end; on tmpfs
    each output is deleted right after its run (memory).
    """
    tools: list[tuple[str, Callable[[Path], Run]]] = [
        ("medcat fetch (sha256 every byte)", lambda d: medcat("medcat fetch (sha256 every byte)", slug, port, d, env)),
        ("medcat fetch command alone (sha256)", lambda d: medcat("medcat fetch command alone (sha256)", slug, port, d, env, cli=False)),
        ("medcat fetch --no-hash", lambda d: medcat("medcat fetch --no-hash", slug, port, d, env, "--no-hash", cli=False)),
        ("wget -r -N -c -np", lambda d: wget("wget -r -N -c -np", slug, port, d)),
        ("aria2c -j8 with checksums", lambda d: aria2("aria2c -j8 with checksums", slug, port, d, base)),
    ]
    results: dict[str, list[Run]] = {label: [] for label, _ in tools}
    checks: list[Run] = []
    for i in range(repeat):
        for label, tool in tools:
            dest = fresh(fs_root / f"{slug}-{label.split()[0]}-{len(results[label])}-{i}-{time.monotonic_ns()}")
            run = tool(dest)
            results[label].append(run)
            if label.startswith("wget"):
                checks.append(sha256sum_check("sha256sum -c", slug, dest))
            if fs_name == "tmpfs":
                shutil.rmtree(dest, ignore_errors=True)
    runs = [median(results[label]) for label, _ in tools]
    wget_runs = results["wget -r -N -c -np"]
    combined = [Run("wget -r + sha256sum -c", w.wall_s + c.wall_s, w.cpu_s + c.cpu_s, max(w.rss_mb, c.rss_mb), c.ok)
                for w, c in zip(wget_runs, checks)]
    runs.insert(4, median(combined))
    return runs


def network_compare(
    slug: str, port: int, env: dict[str, str], base: Path, fs_root: Path, repeat: int, only: set[str] | None = None
) -> list[Run]:
    """medcat (hashing; default jobs and 8), wget -r and aria2c -j8 with checksums through the proxy; medians, tmpfs."""
    tools: list[tuple[str, Callable[[Path], Run]]] = [
        ("medcat fetch (sha256 every byte)", lambda d: medcat("medcat fetch (sha256 every byte)", slug, port, d, env)),
        ("medcat fetch --jobs 8 (sha256)", lambda d: medcat("medcat fetch --jobs 8 (sha256)", slug, port, d, env, "--jobs", "8")),
        ("wget -r -N -c -np", lambda d: wget("wget -r -N -c -np", slug, port, d)),
        ("aria2c -j8 with checksums", lambda d: aria2("aria2c -j8 with checksums", slug, port, d, base)),
    ]
    tools = [t for t in tools if only is None or t[0] in only]
    results: dict[str, list[Run]] = {label: [] for label, _ in tools}
    for i in range(repeat):
        for label, tool in tools:
            dest = fresh(fs_root / f"net-{slug}-{label.split()[0]}-{i}")
            results[label].append(tool(dest))
            shutil.rmtree(dest, ignore_errors=True)
    return [median(results[label]) for label, _ in tools]


def scale_section(work: Path, registry: Path, scale: int) -> str:
    """Peak RSS and wall of a fresh fetch and a no-op re-run of many tiny files (``file://`` mirror)."""
    runs: list[Run] = []
    env = medcat_env(registry, work / "home")
    for count in SCALE_COUNTS:
        count //= scale
        build_scale_tree(work / "scale", count)
        dest = fresh(work / "dest" / f"scale{count // 1000}k")
        slug = f"scale{count // 1000}k"
        args = [f"bench-{slug}", "--mirror", f"file://{work / 'scale'}", "--dest", str(dest), "--json"]
        runs.append(timed(f"{count:,} files: fresh fetch", [PYTHON, "-m", "medcat_data", "fetch", *args], env=env))
        runs.append(timed(f"{count:,} files: no-op re-run", [PYTHON, "-m", "medcat_data", "fetch", *args], env=env))
        shutil.rmtree(dest, ignore_errors=True)
    lines = [fmt(runs), ""]
    if len(runs) == 4:
        n = (SCALE_COUNTS[1] - SCALE_COUNTS[0]) // scale
        for label, pair in (("fresh", (runs[0], runs[2])), ("no-op", (runs[1], runs[3]))):
            lines.append(f"- growth per file, {label}: {(pair[1].rss_mb - pair[0].rss_mb) * 1024 / n:.2f} kB")
    return "### memory and no-op: tiny files, MIMIC-CXR-shaped paths, `file://` mirror, ext4\n\n" + "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    def tool(cmd: list[str]) -> str:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except OSError:
            return "?"
        lines = (proc.stdout or proc.stderr).splitlines()
        return lines[0] if lines else "?"
    return {
        "cpu": f"{cpu} x {os.cpu_count()}",
        "memory": f"{mem_kb / 1e6:.0f} GB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
        "wget": tool(["wget", "--version"]),
        "aria2c": tool(["aria2c", "--version"]),
    }


def write_registry(path: Path) -> None:
    entries = []
    for slug in [*SETS, *(f"scale{n // 1000}k" for n in SCALE_COUNTS)]:
        entries.append({
            "id": f"bench-{slug}", "name": f"bench {slug}", "description": "A PhysioNet-like tree for the fetch benchmark, served by nginx.",
            "homepage": "https://example.org/bench", "modalities": ["ehr"], "tasks": ["tabular"], "access": "open",
            "access_info": {"steps": ["none"]}, "license": {"name": "none"}, "citation": "@misc{b, title={b}}",
            "versions": [{"version": "1.0.0"}], "default_version": "1.0.0", "size": {},
            "sources": [{"name": "physionet", "kind": "physionet", "slug": slug}],
        })
    path.write_text(yaml.safe_dump({"datasets": entries}, sort_keys=False))


def fmt(runs: list[Run], baseline: str | None = None) -> str:
    base = next((r for r in runs if r.label == baseline), None)
    lines = ["| command | wall s | CPU s | peak RSS MB | vs " + (baseline or "-") + " | note |", "|---|---:|---:|---:|---:|---|"]
    for r in runs:
        ratio = f"{base.wall_s / r.wall_s:.2f}x" if base and r.wall_s else ""
        engine = f"in-engine {r.extra['engine_s']:.2f} s" if "engine_s" in r.extra else ""
        spread = f"range {r.extra['min_s']:.2f}-{r.extra['max_s']:.2f} s" if "min_s" in r.extra else ""
        note = "; ".join(x for x in (spread, engine, "" if r.ok else f"FAILED {r.note}", r.note if r.ok else "") if x)
        lines.append(f"| {r.label} | {r.wall_s:.2f} | {r.cpu_s:.2f} | {r.rss_mb:.0f} | {ratio} | {note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/work/bench-fetch"))
    parser.add_argument("--tmpfs", type=Path, default=Path("/dev/shm/medcat-bench-fetch"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", choices=["stacks", "small", "large", "noop", "rate", "net", "scale"], action="append")
    parser.add_argument("--net-repeat", type=int, default=1, help="runs per command through the latency proxy")
    parser.add_argument("--net-tool", action="append", help="only these rows of the network section (by label)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the median is reported")
    parser.add_argument("--settle-s", type=float, default=310.0,
                        help="wait after deleting old outputs on ext4 (recently freed inodes slow file creation)")
    parser.add_argument("--keep", action="store_true", help="keep the downloaded trees")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    work: Path = args.work
    root = work / "www"
    wanted = set(args.only or ["stacks", "small", "large", "noop", "rate", "net", "scale"])
    uses = {"stacks": {"small"}, "small": {"small"}, "large": {"large"}, "noop": {"noop"}, "rate": {"large"},
            "net": {"small", "netlarge"}, "scale": set()}
    needed = set().union(*(uses[w] for w in wanted))
    bases = {slug: build_tree(root, slug, n // scale, size) for slug, (n, size) in SETS.items() if slug in needed}
    registry = work / "registry.yaml"
    write_registry(registry)
    results: dict[str, object] = {"machine": machine()}
    sections: list[str] = []
    if "scale" in wanted:
        sections.append(scale_section(work, registry, scale))
    startup = median([timed("medcat --help", [PYTHON, "-m", "medcat_data", "--help"]) for _ in range(3)])
    fetch_startup = median([timed("fetch command --help", [PYTHON, "-c", FETCH_ONLY, "--help"]) for _ in range(3)])
    settle(work / "dest", args.settle_s)
    from medcat_data.loaders.options import default_jobs

    per_connection = 100_000 // default_jobs()  # kB/s: the default transfers share ~100 MB/s
    with nginx(root, work, limit_rate=f"{per_connection}k") as (fast, slow):
        env = medcat_env(registry, work / "home")
        if "stacks" in wanted:
            runs = client_stacks(fast, bases["small"], "small", 2000 // scale, args.tmpfs)
            sections.append("### Client stacks (2,000 x 100 kB, one thread, streaming + sha256 + write, tmpfs)\n\n" + "\n".join(
                f"- {r.label}: {r.wall_s:.2f} s wall, {r.extra['cpu_ms_per_file']:.2f} ms CPU per file {r.note}" for r in runs))
            results["stacks"] = [r.__dict__ for r in runs]
        for slug in ("small", "large"):
            if slug not in wanted:
                continue
            for fs_name, fs_root in (("ext4", work / "dest"), ("tmpfs", args.tmpfs)):
                runs = compare(slug, fs_name, fs_root, fast, env, bases[slug], args.repeat)
                n, size = SETS[slug]
                title = f"### {slug}: {n // scale:,} x {size / 1e6:g} MB, destination {fs_name} (median of {args.repeat})"
                sections.append(title + "\n\n" + fmt(runs, "wget -r -N -c -np"))
                results[f"{slug}-{fs_name}"] = [r.__dict__ for r in runs]
        if "noop" in wanted:
            runs = []
            d = fresh(work / "dest" / "noop-medcat")
            runs.append(medcat("medcat fetch (first run)", "noop", fast, d, env))
            runs.append(median([medcat("medcat fetch (no-op re-run)", "noop", fast, d, env) for _ in range(args.repeat)]))
            runs.append(median([medcat("medcat fetch command alone (no-op re-run)", "noop", fast, d, env, cli=False)
                                for _ in range(args.repeat)]))
            w = fresh(work / "dest" / "noop-wget")
            runs.append(wget("wget -r -N -c -np (first run)", "noop", fast, w))
            runs.append(median([wget("wget -r -N -c -np (no-op re-run)", "noop", fast, w) for _ in range(args.repeat)]))
            sections.append(f"### no-op re-run: {SETS['noop'][0] // scale:,} files, ext4\n\n" + fmt(runs))
            results["noop"] = [r.__dict__ for r in runs]
        if "rate" in wanted:
            hashing, plain = [], []
            for i in range(args.repeat):
                hashing.append(medcat("medcat fetch (sha256)", "large", slow, fresh(work / "dest" / f"rate-h{i}"), env))
                plain.append(medcat("medcat fetch --no-hash", "large", slow, fresh(work / "dest" / f"rate-n{i}"), env, "--no-hash"))
            runs = [median(hashing), median(plain)]
            title = f"### large set over a ~100 MB/s link ({default_jobs()} connections x {per_connection / 1000:g} MB/s), ext4"
            sections.append(title + "\n\n" + fmt(runs, "medcat fetch --no-hash"))
            results["rate"] = [r.__dict__ for r in runs]
        if "net" in wanted:
            with latency_proxy(fast, NET_RTT_MS, NET_MBIT) as port:
                for slug in ("small", "netlarge"):
                    tools = set(args.net_tool) if args.net_tool else None
                    runs = network_compare(slug, port, env, bases[slug], args.tmpfs, args.net_repeat, tools)
                    n, size = SETS[slug]
                    title = (f"### {slug} through the latency proxy ({NET_RTT_MS:g} ms round trip, {NET_MBIT:g} Mbit/s "
                             f"shared): {n // scale:,} x {size / 1e6:g} MB, destination tmpfs (median of {args.net_repeat})")
                    sections.append(title + "\n\n" + fmt(runs, "wget -r -N -c -np"))
                    results[f"net-{slug}"] = [r.__dict__ for r in runs]
    results["startup"] = startup.__dict__
    results["fetch_command_startup"] = fetch_startup.__dict__
    if not args.keep:
        # Deleted last, not between runs: on ext4, inodes freed in the last minutes make new
        # files slow to create (ext4's recently_deleted() scan), which would skew later runs.
        shutil.rmtree(work / "dest", ignore_errors=True)
    print("## Fetch benchmark\n")
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in results["machine"].items()) + "\n")  # type: ignore[union-attr]
    print(f"CLI start-up alone (`medcat --help`): {startup.wall_s:.2f} s wall, {startup.cpu_s:.2f} s CPU, "
          f"{startup.rss_mb:.0f} MB; the fetch command alone: {fetch_startup.wall_s:.2f} s wall, "
          f"{fetch_startup.cpu_s:.2f} s CPU, {fetch_startup.rss_mb:.0f} MB\n")
    print("\n\n".join(sections))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
