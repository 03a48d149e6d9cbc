#!/usr/bin/env python3
"""The benchmark's anchor: one libtorrent peer per process, driven by scripts/bench.ts.

  bench_libtorrent.py make-torrent <file> <torrent>     hash <file> into a single-file torrent
                                                        with 512 KiB pieces
  bench_libtorrent.py peer <torrent> <save_dir> <port> [seed|leech] [peer_port ...]
                      [--up BYTES_PER_S] [--down BYTES_PER_S] [--progress]

A peer listens on 127.0.0.1:<port> (TCP only; DHT, LSD, UPnP and NAT-PMP off) with libtorrent's
high_performance_seed settings, connects directly to the given peer ports, and reports on
stdout as JSON lines: {"event":"ready"} once set up; a leecher then waits for a line "go" on
stdin, downloads, and prints {"event":"finished","seconds":S}. Every peer exits when its stdin
closes.

--up and --down cap what the peer sends and receives (payload bytes per second, as
Swarmshare's limits count them). libtorrent exempts peers on local networks, loopback included,
from its limits (they fall in its "local" peer class), so a capped peer puts every address in
the global class, whose limits are the session's. --progress makes a leecher print
{"event":"progress","pieces":N,"total":M} whenever it has more pieces. A line "report" on stdin
is answered with {"event":"report","uploaded":B,"downloaded":B}: payload bytes this session.
"""

import json
import sys
import threading
import time

import libtorrent as lt

PIECE_LENGTH = 524288


SAYING = threading.Lock()


def say(event, **fields):
    # the stdin thread answers "report" while the main thread reports progress
    with SAYING:
        print(json.dumps({"event": event, **fields}), flush=True)


def make_torrent(path, torrent_path):
    import os

    storage = lt.file_storage()
    lt.add_files(storage, path)
    torrent = lt.create_torrent(storage, PIECE_LENGTH)
    lt.set_piece_hashes(torrent, os.path.dirname(os.path.abspath(path)))
    with open(torrent_path, "wb") as out:
        out.write(lt.bencode(torrent.generate()))


def session(port, up=None, down=None):
    settings = lt.high_performance_seed()
    settings.update(
        {
            "listen_interfaces": f"127.0.0.1:{port}",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_incoming_utp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_tcp": True,
            "enable_outgoing_tcp": True,
            # every peer is on 127.0.0.1
            "allow_multiple_connections_per_ip": True,
            "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
        }
    )
    if up is None and down is None:
        return lt.session(settings)
    settings.update(
        {
            "upload_rate_limit": up or 0,
            "download_rate_limit": down or 0,
            # payload only, as Swarmshare counts: no estimated TCP/IP overhead drained
            "rate_limit_ip_overhead": False,
            "ignore_limits_on_local_network": False,
        }
    )
    ses = lt.session(settings)
    # by default loopback and private networks are in the unlimited "local" class
    everyone = lt.ip_filter()
    everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    everyone.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(everyone)
    return ses


def peer(torrent_path, save_dir, port, role, peer_ports, up=None, down=None, progress=False):
    ses = session(port, up, down)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_path)
    params.save_path = save_dir
    if role == "seed":
        params.flags |= lt.torrent_flags.seed_mode
    else:
        params.flags |= lt.torrent_flags.paused
        params.flags &= ~lt.torrent_flags.auto_managed
    handle = ses.add_torrent(params)
    for peer_port in peer_ports:
        handle.connect_peer(("127.0.0.1", peer_port))
    say("ready")

    stdin_closed = threading.Event()

    def watch_stdin():
        for line in sys.stdin:
            if line.strip() == "go" and role != "seed":
                go.set()
            elif line.strip() == "report":
                status = handle.status()
                say("report", uploaded=status.total_payload_upload, downloaded=status.total_payload_download)
        stdin_closed.set()
        go.set()

    go = threading.Event()
    threading.Thread(target=watch_stdin, daemon=True).start()
    if role == "seed":
        stdin_closed.wait()
        return
    go.wait()
    if stdin_closed.is_set():
        return
    started = time.monotonic()
    handle.resume()
    for peer_port in peer_ports:
        handle.connect_peer(("127.0.0.1", peer_port))
    pieces = 0
    while True:
        status = handle.status()
        if progress and status.num_pieces > pieces:
            pieces = status.num_pieces
            say("progress", pieces=pieces, total=params.ti.num_pieces())
        if status.is_seeding:
            break
        if stdin_closed.is_set():
            return
        ses.wait_for_alert(50)
        ses.pop_alerts()
    say("finished", seconds=time.monotonic() - started)
    # keep seeding to the others until told to stop
    stdin_closed.wait()


def split_options(args):
    """Positional arguments, and the options among them: --up N, --down N, --progress."""
    positional, options = [], {}
    words = iter(args)
    for word in words:
        if word in ("--up", "--down"):
            options[word] = int(next(words))
        elif word == "--progress":
            options[word] = True
        else:
            positional.append(word)
    return positional, options


def main(argv):
    if len(argv) >= 3 and argv[0] == "make-torrent":
        make_torrent(argv[1], argv[2])
        return 0
    if len(argv) >= 5 and argv[0] == "peer":
        positional, options = split_options(argv[1:])
        peer(
            positional[0],
            positional[1],
            int(positional[2]),
            positional[3],
            [int(p) for p in positional[4:]],
            up=options.get("--up"),
            down=options.get("--down"),
            progress="--progress" in options,
        )
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
