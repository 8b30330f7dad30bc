//! OpenWhisk's sharding scheduler (ShardingContainerPoolBalancer).
