"""A cost hint for recovery instances left running: an ESTIMATE, never a bill.

The dashboard's "Drills left running" card multiplies the instances a drill left running by
the on-demand hourly price of their instance type. The prices below are AWS's published
on-demand prices for Linux in us-east-1 (USD per hour, 2024); other regions cost up to about
30% more, Windows and licensed images more again, and EBS volumes, snapshots and data
transfer are not counted. An instance type not in the table gets no price and is named as
unpriced rather than guessed.

The instance type is the source server's recommended instance type from the inventory
(DescribeSourceServers' `recommendedInstanceType`): what DRS launches when right-sizing is
on (BASIC, its default) and what the sandbox launches.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

# USD per hour, on demand, Linux, us-east-1.
ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "t2.micro": 0.0116,
    "t2.small": 0.023,
    "t2.medium": 0.0464,
    "t2.large": 0.0928,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3.xlarge": 0.1664,
    "t3.2xlarge": 0.3328,
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "m5.4xlarge": 0.768,
    "m6i.large": 0.096,
    "m6i.xlarge": 0.192,
    "m6i.2xlarge": 0.384,
    "c5.large": 0.085,
    "c5.xlarge": 0.17,
    "c5.2xlarge": 0.34,
    "c6i.large": 0.085,
    "c6i.xlarge": 0.17,
    "r5.large": 0.126,
    "r5.xlarge": 0.252,
    "r5.2xlarge": 0.504,
    "r5.4xlarge": 1.008,
    "r6i.large": 0.126,
    "r6i.xlarge": 0.252,
}


@dataclass(frozen=True)
class CostEstimate:
    """What instances of these types cost per hour, estimated from ON_DEMAND_USD_PER_HOUR;
    `unpriced` names the types (or "unknown type") the table has no price for."""

    usd_per_hour: float
    unpriced: dict[str, int] = field(default_factory=dict)

    def usd_for(self, hours: float) -> float:
        """The estimated cost of running them `hours` hours (priced instances only)."""
        return self.usd_per_hour * max(hours, 0.0)


def hourly_cost_estimate(*, instance_types: Mapping[str, int]) -> CostEstimate:
    """The estimated hourly cost of `instance_types` (instance type -> how many run; "" for
    an instance whose type is not known)."""
    total, unpriced = 0.0, {}
    for instance_type, count in instance_types.items():
        price = ON_DEMAND_USD_PER_HOUR.get(instance_type)
        if price is None:
            label = instance_type or "unknown type"
            unpriced[label] = unpriced.get(label, 0) + count
        else:
            total += price * count
    return CostEstimate(usd_per_hour=total, unpriced=unpriced)
