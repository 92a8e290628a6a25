"""``ms2img request EVENTS --out request.json``: the body a served model takes, built from ingested exports.

A downstream team has exports, not request rows. ``ms2img ingest`` reads them (every format, the sample sheet,
replicate injections of one extract under one accession, undetected heights dropped); this command turns that
events folder into request rows with :func:`ms2img.serving.request.events_to_request`: one row per precursor, and
per injection (a ``replicate`` column) when an extract was injected several times, so the served model averages the
injections as its training did and the served image is the one a trained model would have seen. Sending each
injection's rows under one accession without ``replicate``, or an export's height-0 rows, does not give that image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ms2img.errors import ConfigError

FORMATS = ("json", "csv")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``request`` subcommand."""
    p = subparsers.add_parser(
        "request",
        help="write the request body a served model takes (JSON or CSV) from an ingested events folder",
        description=(
            "Turn `ms2img ingest` output (EVENTS/<accession>.parquet) into prediction request rows, one per "
            "precursor and injection (the server averages injections as training did), and write them as an "
            "/invocations body: "
            'JSON {"dataframe_records": [...]} or CSV (Content-Type text/csv). Example: ms2img ingest export.txt '
            "--out new_events && ms2img request new_events --out request.json && curl -s "
            "http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' --data-binary @request.json"
        ),
    )
    p.add_argument("events", metavar="EVENTS", help="events folder written by `ms2img ingest` (or one .parquet)")
    p.add_argument("--out", required=True, metavar="FILE", help="request body to write (.json or .csv)")
    p.add_argument("--accessions", metavar="A,B", help="comma-separated accessions to include (default: all)")
    p.add_argument("--format", choices=FORMATS, help="json or csv (default: from --out's extension, else json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the body and say what it holds and how to send it."""
    import pandas as pd

    from ms2img import atomic
    from ms2img.io.schema import one_polarity, read_events
    from ms2img.render.files import event_files
    from ms2img.serving.request import DEFAULT_MAX_ROWS, PARAM_POLARITY, POLARITIES, events_to_request

    files = event_files(args.events)
    events = pd.concat([read_events(f) for f in files], ignore_index=True)
    if args.accessions:
        wanted = [a.strip() for a in args.accessions.split(",") if a.strip()]
        unknown = sorted(set(wanted) - set(events["accession"].astype(str)))
        if unknown:
            raise ConfigError(f"--accessions: {unknown[:5]} not in {args.events} (it holds "
                              f"{events['accession'].nunique()} accessions)")  # fmt: skip
        position = {a: i for i, a in enumerate(dict.fromkeys(wanted))}  # the body (and answer) in the order asked
        chosen = events["accession"].astype(str).map(position)
        events = events[chosen.notna()].iloc[chosen.dropna().argsort(kind="stable")]
    polarity = one_polarity(events["polarity"].unique()) if "polarity" in events else "unknown"
    rows = events_to_request(events)
    undetected = ~(rows["precursor_intensity"] > 0)  # a reader that kept a height-0 row: it would render nothing
    rows = rows[~undetected].reset_index(drop=True)
    if rows.empty:
        raise ConfigError(f"{args.events}: no precursor with MS/MS and a height to send")
    out = Path(args.out)
    fmt = args.format or ("csv" if out.suffix.lower() == ".csv" else "json")
    if fmt == "csv":
        atomic.write_text(out, rows.to_csv(index=False))
        ctype = "text/csv"
    else:
        params = f', "params": {{"{PARAM_POLARITY}": "{polarity}"}}' if polarity in POLARITIES else ""
        records = rows.to_json(orient="records", double_precision=10)
        atomic.write_text(out, '{"dataframe_records": ' + records + params + "}")
        ctype = "application/json"
    n_acc = rows["accession"].nunique()
    replicated = int((events.groupby("accession")["replicate"].nunique() > 1).sum())
    averaged = (
        f", {replicated} with one row per injection (the server averages them as training did)" if replicated else ""
    )
    dropped = f"; {int(undetected.sum())} undetected (height 0) left out" if undetected.any() else ""
    mode = ""
    if polarity in POLARITIES:  # a CSV body has no params: the server cannot check the mode
        json_body = "the body says so: a model of the other mode refuses it"
        mode = f", {polarity} ions ({json_body if fmt == 'json' else 'a CSV body cannot say so: send JSON to check'})"
    print(f"wrote {out}: {len(rows)} rows (precursors) for {n_acc} accession(s){averaged}{mode}{dropped}")
    if len(rows) > DEFAULT_MAX_ROWS:
        print(f"  warning: more than {DEFAULT_MAX_ROWS} rows, the server's default limit per request "
              "(serve.max_rows); split it with --accessions")  # fmt: skip
    print(f"  send: curl -s {_server_url()}/invocations -H 'Content-Type: {ctype}' --data-binary @{out}")
    return 0


def _server_url() -> str:
    """Where ``ms2img serve`` listens by default: params.yaml's ``serve.host``/``serve.port`` in a project, else the
    shipped defaults (the hint named port 5001 whatever the project set)."""
    from ms2img.params import load_params

    try:
        serve = (load_params("params.yaml").get("serve") or {}) if Path("params.yaml").is_file() else {}
    except ConfigError:  # a hint: an unreadable params.yaml is the next command's to report
        serve = {}
    return f"http://{serve.get('host', '127.0.0.1')}:{serve.get('port', 5001)}"
