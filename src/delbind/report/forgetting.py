"""The fourth answer, what fine-tuning forgot: the trunk's masked-LM loss and its representation drift, per arm
(measured by ``delbind.arms.forgetting`` in every run's metrics.json)."""

from __future__ import annotations

import pandas as pd


def forgetting(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """MLM forgetting (trunks with an MLM head) and representation drift (every trunk), per arm, in 2-3 sentences
    and a table."""
    columns = [c for c in ("forgetting", "representation_drift") if c in summary and summary[c].notna().any()]
    n_train = int(runs["n_train"].median()) if "n_train" in runs else None
    small = f"{n_train:,} training molecules" if n_train else "the training set"
    if not columns:
        return (
            "Not measured in these runs: no run recorded `forgetting` (the trunk's masked-LM loss after minus before "
            "training) or `representation_drift` (1 - linear CKA of its embeddings before and after). What is at "
            f"risk when every weight fits {small}: the pretrained trunk's general chemistry."
        )
    measured = summary.dropna(subset=columns, how="all")
    sentences = []
    if "forgetting" in columns:
        worst = measured.loc[measured["forgetting"].idxmax()]
        sentences.append(
            f"It forgets the pretrained trunk's chemistry: fitting {small}, {worst['arm']} raised the trunk's "
            f"masked-token loss by {worst['forgetting']:+.3f}, the most of any arm (over arms: "
            f"{measured['forgetting'].min():+.3f} to {measured['forgetting'].max():+.3f})."
        )
    if "representation_drift" in columns:
        drift = measured["representation_drift"]
        if (drift > 0).any():
            moved = measured.loc[drift.idxmax()]
            sentences.append(
                f"Its embeddings of the same held-out molecules moved most for {moved['arm']} (drift "
                f"{moved['representation_drift']:.3f}, where 0 is unchanged and 1 shares no linear structure)."
            )
        else:  # only frozen trunks recorded it: say which runs predate it rather than name a 0 the "most"
            unknown = measured.loc[drift.isna(), "arm"].tolist()
            sentences.append(
                "Representation drift (1 - linear CKA of the embeddings before and after) is 0 for every arm that "
                "recorded it: their trunks stayed frozen"
                + (f"; the runs of {', '.join(unknown)} were kept before drift was measured." if unknown else ".")
            )
    sentences.append(
        "Both are means over the runs of each arm that recorded them, on fixed held-out molecules none of the runs "
        "trained on."
    )
    names = {"forgetting": "MLM loss after - before", "representation_drift": "drift (1 - CKA)"}
    head = ["| arm | " + " | ".join(names[c] for c in columns) + " | runs |", "|---" * (len(columns) + 2) + "|"]
    fmt = {"forgetting": "{:+.3f}", "representation_drift": "{:.3f}"}

    def cell(own: pd.DataFrame, value: float, column: str) -> str:
        """The mean, and how many of the arm's runs (``own``) it is over when some predate the measure."""
        if pd.isna(value):
            return "n/a"
        recorded = int(pd.to_numeric(own[column], errors="coerce").notna().sum()) if column in own else len(own)
        return fmt[column].format(value) + (f" ({recorded} of {len(own)} runs)" if recorded < len(own) else "")

    rows = []
    for _, r in measured.iterrows():
        own = runs.loc[runs["arm"] == r["arm"]]
        rows.append(f"| {r['arm']} | " + " | ".join(cell(own, r[c], c) for c in columns) + f" | {len(own)} |")
    return " ".join(sentences) + "\n\n" + "\n".join(head + rows)
