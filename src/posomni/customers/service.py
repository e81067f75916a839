"""Customers and loyalty points."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.customers.models import Customer
from posomni.customers.schemas import CustomerIn
from posomni.kit.errors import Conflict, NotFound, ValidationFailed

# Store-setting defaults: 1 point per whole dollar spent; 100 points are worth $1.00.
DEFAULT_POINTS_PER_DOLLAR = 1
DEFAULT_POINT_VALUE_CENTS = Decimal(1)


class NotEnoughPoints(ValidationFailed):
    code = "not_enough_points"
    default_message = "The customer does not have that many loyalty points."


def normalise_phone(phone: str) -> str:
    return re.sub(r"[^0-9+]", "", phone)


async def get(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("No such customer.", details={"customer_id": customer_id})
    return customer


async def find(session: AsyncSession, *, phone: str | None = None, card: str | None = None) -> Customer:
    conditions = []
    if phone:
        conditions.append(Customer.phone == normalise_phone(phone))
    if card:
        conditions.append(Customer.loyalty_card == card.strip())
    if not conditions:
        raise ValidationFailed("Give a phone number or a loyalty card number.")
    customer = await session.scalar(select(Customer).where(or_(*conditions)).limit(1))
    if customer is None:
        raise NotFound("No customer with that phone or card.")
    return customer


async def create(session: AsyncSession, data: CustomerIn) -> Customer:
    phone = normalise_phone(data.phone) if data.phone else None
    if phone is not None and not 7 <= len(phone.lstrip("+")) <= 15:
        raise ValidationFailed("A phone number has 7 to 15 digits.", details={"field": "phone"})
    clash = []
    if phone:
        clash.append(Customer.phone == phone)
    if data.loyalty_card:
        clash.append(Customer.loyalty_card == data.loyalty_card)
    if clash and await session.scalar(select(Customer.id).where(or_(*clash))) is not None:
        raise Conflict("A customer with that phone or card exists.", details={"code": "customer_exists"})
    customer = Customer(name=data.name.strip(), phone=phone, loyalty_card=data.loyalty_card)
    session.add(customer)
    await session.flush()
    return customer


def points_per_dollar(store_settings: dict[str, Any]) -> int:
    return int(store_settings.get("loyalty_points_per_dollar", DEFAULT_POINTS_PER_DOLLAR))


def point_value_cents(store_settings: dict[str, Any]) -> Decimal:
    return Decimal(str(store_settings.get("loyalty_point_value_cents", DEFAULT_POINT_VALUE_CENTS)))


def points_earned(paid_cents: int, store_settings: dict[str, Any]) -> int:
    # Whole dollars only, after discounts, excluding what was paid with points.
    return max(0, paid_cents // 100) * points_per_dollar(store_settings)


def points_for_amount(amount_cents: int, store_settings: dict[str, Any]) -> int:
    value = point_value_cents(store_settings)
    points = Decimal(amount_cents) / value
    if points != points.to_integral_value():
        raise ValidationFailed(
            "That amount cannot be paid exactly with points.", details={"point_value_cents": str(value)}
        )
    return int(points)


async def redeem(session: AsyncSession, customer_id: int, points: int) -> None:
    """Conditional update: never below zero, even with two registers redeeming at once."""
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id).with_for_update())
    if customer is None:
        raise NotFound("No such customer.")
    if customer.loyalty_points < points:
        raise NotEnoughPoints(details={"available": customer.loyalty_points, "requested": points})
    customer.loyalty_points -= points


async def earn(session: AsyncSession, customer_id: int, points: int) -> None:
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id).with_for_update())
    if customer is not None and points:
        customer.loyalty_points += points


async def redeem_up_to(session: AsyncSession, customer_id: int, points: int) -> int:
    """Take back up to `points` (a voided sale's earned points); never below zero. Returns what was taken."""
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id).with_for_update())
    if customer is None:
        return 0
    taken = min(points, customer.loyalty_points)
    customer.loyalty_points -= taken
    return taken
