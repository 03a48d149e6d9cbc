#!/usr/bin/env python3
"""The benchmark's anchor: one libtorrent peer per process, driven by scripts/bench.ts.

  bench_libtorrent.py make-torrent <file> <torrent>     hash <file> into a single-file torrent
                                                        with 512 KiB pieces
  bench_libtorrent.py peer <torrent> <save_dir> <port> [seed|leech] [peer_port ...]

A peer listens on 127.0.0.1:<port> (TCP only; DHT, LSD, UPnP and NAT-PMP off) with libtorrent's
high_performance_seed settings, connects directly to the given peer ports, and reports on
stdout as JSON lines: {"event":"ready"} once set up; a leecher then waits for a line "go" on
stdin, downloads, and prints {"event":"finished","seconds":S}. Every peer exits when its stdin
closes.
"""

import json
import sys
import threading
import time

import libtorrent as lt

PIECE_LENGTH = 524288


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def make_torrent(path, torrent_path):
    import os

    storage = lt.file_storage()
    lt.add_files(storage, path)
    torrent = lt.create_torrent(storage, PIECE_LENGTH)
    lt.set_piece_hashes(torrent, os.path.dirname(os.path.abspath(path)))
    with open(torrent_path, "wb") as out:
        out.write(lt.bencode(torrent.generate()))


def session(port):
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
    return lt.session(settings)


def peer(torrent_path, save_dir, port, role, peer_ports):
    ses = session(port)
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
    while not handle.status().is_seeding:
        if stdin_closed.is_set():
            return
        ses.wait_for_alert(50)
        ses.pop_alerts()
    say("finished", seconds=time.monotonic() - started)
    # keep seeding to the others until told to stop
    stdin_closed.wait()


def main(argv):
    if len(argv) >= 3 and argv[0] == "make-torrent":
        make_torrent(argv[1], argv[2])
        return 0
    if len(argv) >= 5 and argv[0] == "peer":
        peer(argv[1], argv[2], int(argv[3]), argv[4], [int(p) for p in argv[5:]])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
