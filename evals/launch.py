"""`evals`, started as `prep` is (prep.launch): a signal while the libraries load ends in one line."""

from __future__ import annotations

from prep.launch import console, quiet_start


def main() -> None:
    with quiet_start():
        from evals.cli import main as cli
    console(cli)
