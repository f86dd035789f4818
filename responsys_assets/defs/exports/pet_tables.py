"""Profile extension tables as exports meet them: created on first use, else checked for columns.

Shared by the PET export (which stops on a missing column) and a profile list export's side
PETs (which drop it): Responsys adds PET columns only by hand.
"""

from __future__ import annotations

from responsys_assets.lib.responsys import PetInfo


def ensure_pet(
    client, list_name: str, pet: str, folder: str, columns: list[str], field_type: str
) -> tuple[PetInfo | None, list[str]]:
    """Create the PET with `columns` when the list has none of that name (returns None, []);
    else return it and the columns it lacks. Responsys adds PET columns only by hand, so what
    to do about a missing column is the caller's choice."""
    live = next(
        (p for p in client.list_pets(list_name) if (p.name or "").lower() == pet.lower()), None
    )
    if live is None:
        client.create_folder(folder)  # False when it exists, which is fine
        client.create_pet(list_name, pet, folder, [(name, field_type) for name in columns])
        return None, []
    have = {(name or "").upper() for name, _ in live.fields}
    return live, [name for name in columns if name.upper() not in have]
