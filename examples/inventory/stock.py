"""Stock keeping for a tiny shop."""

from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0


@dataclass
class Inventory:
    items: dict[str, Item] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        """Add an item, or increase the quantity if an item with that name exists."""
        pass

    def total_value(self) -> float:
        """Return the sum of price times quantity over all items."""
        ...


def average(values: list[float]) -> float:
    """Return the arithmetic mean of values, or 0.0 for an empty list."""
