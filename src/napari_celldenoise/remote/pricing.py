"""Cloud TPU list prices, to show what a launch costs before it starts.

Google's published on-demand list prices per chip-hour (cloud.google.com/tpu/pricing,
us-central1/us-east1, as listed on :data:`PRICES_DATE`). Spot prices are set by Google and
change; they are shown as "spot: lower, varies". Prices differ by region and change: the
table is data, not a promise, and the docs tell the user to check the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRICES_DATE = "2025-06"
PRICES_URL = "https://cloud.google.com/tpu/pricing"

# generation -> (US dollars per chip-hour on demand, TensorCores counted per chip in the
# accelerator type's number: v2-v4 and v5p count cores, v5e and v6e count chips)
PER_CHIP_HOUR: dict[str, tuple[float, int]] = {
    "v5litepod": (1.20, 1),  # TPU v5e
    "v6e": (2.70, 1),  # TPU v6e (Trillium)
    "v5p": (4.20, 2),
    "v4": (3.22, 2),
}

SETUP_HOURS = 0.15
"""Creating a TPU VM and installing TensorFlow on it: about 9 minutes billed before training."""


@dataclass(frozen=True)
class Price:
    accelerator: str
    chips: int
    per_hour: float

    def describe(self, *, spot: bool = False) -> str:
        text = (
            f"{self.accelerator}: {self.chips} chip(s) x list ${self.per_hour / self.chips:.2f} "
            f"= ${self.per_hour:.2f} per hour on demand ({PRICES_URL}, {PRICES_DATE})"
        )
        return text + ("; spot: lower, set by Google and varying" if spot else "")

    def estimate(self, hours: float) -> float:
        return self.per_hour * (hours + SETUP_HOURS)


def price_of(accelerator: str) -> Price | None:
    """The list price of an accelerator type (``v5litepod-1``, ``v4-8``...), None if unknown."""
    match = re.fullmatch(r"(v\d+[a-z]*)-(\d+)", accelerator.strip())
    if not match or match.group(1) not in PER_CHIP_HOUR:
        return None
    per_chip, per = PER_CHIP_HOUR[match.group(1)]
    chips = max(1, int(match.group(2)) // per)
    return Price(accelerator, chips, round(per_chip * chips, 4))


def cost_line(accelerator: str, *, spot: bool = False, hours: float | None = None) -> str:
    """What to show before a launch: the price per hour, and with ``hours`` an estimate."""
    price = price_of(accelerator)
    if price is None:
        return f"{accelerator}: no list price known here; see {PRICES_URL}"
    text = price.describe(spot=spot)
    if hours is not None:
        text += (
            f"; about ${price.estimate(hours):.2f} for {hours:.2f} h of training plus "
            f"{SETUP_HOURS * 60:.0f} min of setup"
        )
    return text


__all__ = ["PER_CHIP_HOUR", "PRICES_DATE", "PRICES_URL", "Price", "cost_line", "price_of"]
