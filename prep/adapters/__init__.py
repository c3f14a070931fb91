"""One adapter per source format: a raw record in, a `Row` out (or `MalformedRow`)."""

from __future__ import annotations

from collections.abc import Callable

from prep.adapters import alpaca, capybara, evol_instruct, metamath, openorca, platypus, sharegpt
from prep.rows import RawRecord, Row
from prep.source import SourceConfig

Adapter = Callable[[RawRecord, SourceConfig, int], Row]

ADAPTERS: dict[str, Adapter] = {
    "openorca": openorca.adapt,
    "evol_instruct": evol_instruct.adapt,
    "platypus": platypus.adapt,
    "sharegpt": sharegpt.adapt,
    "alpaca": alpaca.adapt,
    "capybara": capybara.adapt,
    "metamath": metamath.adapt,
}
