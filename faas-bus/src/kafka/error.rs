//! From librdkafka's errors to [`faas_core::Error`].

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use faas_core::Error;

/// The adapter's name in [`Error::Backend`].
pub(crate) const BACKEND: &str = "kafka";

/// Whether `code` is a fault that may clear by itself: a broker down or moving, a time-out,
/// a full queue.
pub(crate) fn is_transient(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::Resolve
            | C::MessageTimedOut
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::QueueFull
            | C::TimedOutQueue
            | C::WaitingForCoordinator
            | C::InProgress
            | C::PreviousInProgress
            | C::Retry
            | C::Interrupted
            | C::PurgeInflight
            | C::PurgeQueue
            | C::RequestTimedOut
            | C::NetworkException
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::BrokerNotAvailable
            | C::ReplicaNotAvailable
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::RebalanceInProgress
            | C::KafkaStorageError
            | C::FetchSessionIdNotFound
            | C::InvalidFetchSessionEpoch
            | C::ThrottlingQuotaExceeded
            | C::UnknownLeaderEpoch
            | C::FencedLeaderEpoch
            | C::OffsetNotAvailable
            | C::PreferredLeaderNotAvailable
            | C::UnstableOffsetCommit
            | C::IllegalGeneration
            | C::UnknownMemberId
    )
}

/// Whether `code` says the topic or partition does not exist.
pub(crate) fn is_unknown_topic(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownPartition
    )
}

/// The librdkafka error code in `e`, also for admin operations (which rdkafka's own
/// `rdkafka_error_code` leaves out).
pub(crate) fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::AdminOp(code) => Some(*code),
        e => e.rdkafka_error_code(),
    }
}

/// `e` while doing `what` on `topic` (a logical name, for messages): unknown topics become
/// `NotFound`, oversized messages `TooLarge`, the rest [`Error::Backend`], retryable when the
/// fault may clear by itself.
pub(crate) fn map(e: KafkaError, topic: &str) -> Error {
    match code(&e) {
        Some(code) if is_unknown_topic(code) => Error::not_found(topic),
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => Error::too_large(format!(
            "The message is larger than the broker accepts on topic {topic}."
        )),
        Some(code) => Error::backend(BACKEND, is_transient(code), e),
        None => Error::backend(BACKEND, false, e),
    }
}

/// A retryable failure described by `message` (a local time-out, a dropped client).
pub(crate) fn transient(message: impl Into<String>) -> Error {
    Error::backend(BACKEND, true, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_faults_are_retryable_503() {
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::RequestTimedOut,
        ] {
            let e = map(KafkaError::MessageProduction(code), "t");
            assert!(e.is_retryable(), "{code:?}");
            assert_eq!(e.status(), 503, "{code:?}");
        }
    }

    #[test]
    fn unknown_topic_is_not_found_and_size_is_too_large() {
        let e = map(
            KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition),
            "t",
        );
        assert_eq!(e.status(), 404);
        let e = map(
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
            "t",
        );
        assert_eq!(e.status(), 413);
        let e = map(
            KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
            "t",
        );
        assert!(e.is_retryable(), "admin time-outs are retryable");
        let e = map(
            KafkaError::MessageProduction(RDKafkaErrorCode::InvalidConfig),
            "t",
        );
        assert!(!e.is_retryable());
        assert_eq!(e.status(), 500);
    }
}
