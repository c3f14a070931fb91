"""The licences of the sources a build kept rows from, and whether their terms can be combined.

Each licence id (the dataset card's `license:` value) falls into one kind: permissive (MIT, Apache-2.0,
BSD, CC-BY, CC0, ODC-BY), share-alike (CC-BY-SA, GPL: derived data under the same terms), non-commercial
(CC-BY-NC*). A mixture that keeps non-commercial rows next to permissive or share-alike ones can, as a whole,
only be used non-commercially, and CC-BY-SA's "same terms" cannot be met under CC-BY-NC: the build says so."""

from __future__ import annotations

from typing import Any

KINDS = {
    "mit": "permissive",
    "apache-2.0": "permissive",
    "bsd-2-clause": "permissive",
    "bsd-3-clause": "permissive",
    "cc-by-3.0": "permissive",
    "cc-by-4.0": "permissive",
    "cc0-1.0": "permissive",
    "odc-by": "permissive",
    "cc-by-sa-3.0": "share-alike",
    "cc-by-sa-4.0": "share-alike",
    "gpl-3.0": "share-alike",
    "cc-by-nc-3.0": "non-commercial",
    "cc-by-nc-4.0": "non-commercial",
    "cc-by-nc-sa-4.0": "non-commercial",
    "cc-by-nc-nd-4.0": "non-commercial",
}


def kind(licence: str | None) -> str:
    return KINDS.get((licence or "").lower(), "unknown")


def licence_report(licences: dict[str, str | None], kept: dict[str, int]) -> dict[str, Any]:
    """`kept`: the sources' licences where rows were kept; `warnings`: one line per problem."""
    used = {s: licences[s] or "unknown" for s, n in kept.items() if n}
    kinds: dict[str, list[str]] = {}
    for source, licence in used.items():
        kinds.setdefault(kind(licence), []).append(f"{source} ({licence})")
    warnings = []
    if "unknown" in kinds:
        warnings.append(f"no known licence for {', '.join(kinds['unknown'])}: set `licence` from the dataset card")
    if "non-commercial" in kinds and {"permissive", "share-alike"} & set(kinds):
        commercial = kinds.get("permissive", []) + kinds.get("share-alike", [])
        warnings.append(
            f"kept rows mix non-commercial terms ({', '.join(kinds['non-commercial'])}) with commercial ones "
            f"({', '.join(commercial)}): the mixture as a whole is for non-commercial use only"
            + (
                ", and CC-BY-SA's share-alike terms cannot be met under a non-commercial licence"
                if "share-alike" in kinds
                else ""
            )
        )
    return {"kept": used, "kinds": kinds, "warnings": warnings}
