//! What sequences and compositions share: the counts that bound a tree of nested runs, how a
//! component ended, and the record the engine writes for a sequence or a composition.

use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::entity::now_ms;
use faas_core::message::TransactionId;
use faas_core::params::Annotations;
use faas_core::{Activation, ActivationId, EntityPath, Error, Identity};

use super::{Engine, ResolvedAction};

/// Counts shared by nested runs, so that the limits apply to the whole tree.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Atomic actions run by a sequence (nested sequences share the count).
    pub(crate) atomic: usize,
    /// Component invocations of a composition (nested compositions share the count).
    pub(crate) components: usize,
    /// Conductor invocations of a composition (nested compositions share the count).
    pub(crate) conductors: usize,
}

/// How a component ended, for the sequence or composition that ran it.
#[derive(Debug)]
pub(crate) enum ComponentEnd {
    /// It finished: its record (as the invoker or the engine wrote it).
    Done(Box<faas_core::Activation>),
    /// No result within the wait: its id.
    TimedOut(ActivationId),
    /// It could not be run (no invoker, a publish failure...).
    Failed(Error),
}

/// What a composition or sequence needs to run a component.
pub(crate) struct Component<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) user: &'a Identity,
    pub(crate) transid: &'a TransactionId,
    pub(crate) cause: &'a ActivationId,
}

/// The memory limit a component ran with, from its record's `limits` annotation.
pub(crate) fn record_memory(a: &Activation) -> Option<u64> {
    a.annotations
        .get("limits")
        .and_then(|l| l.get("memory"))
        .and_then(Value::as_u64)
}

/// What a sequence or composition run produced, for its record.
pub(crate) struct CompositeRun {
    pub(crate) id: ActivationId,
    pub(crate) cause: Option<ActivationId>,
    pub(crate) start: u64,
    pub(crate) transid_start: u64,
    pub(crate) duration: u64,
    pub(crate) max_memory: Option<u64>,
    pub(crate) response: ActivationResponse,
    pub(crate) logs: Vec<String>,
    pub(crate) conductor: bool,
}

/// The record of a sequence or a composition (OpenWhisk's `makeSequenceActivation` and
/// `completeActivation`).
pub(crate) fn composite_record(
    user: &Identity,
    action: &ResolvedAction,
    run: CompositeRun,
) -> Activation {
    let a = &action.action;
    let topmost = run.cause.is_none();
    let mut limits = a.limits;
    if let Some(m) = run.max_memory {
        limits.memory = m;
    }
    let mut annotations = Annotations::new()
        .with("topmost", json!(topmost))
        .with("path", json!(a.fqn().doc_id()))
        .with("kind", json!("sequence"));
    if run.conductor {
        annotations.set("conductor", json!(true));
    }
    if !topmost {
        annotations.set("causedBy", json!("sequence"));
    }
    annotations.set(
        "waitTime",
        json!(run.start.saturating_sub(run.transid_start)),
    );
    if let Some(b) = &action.binding {
        annotations.set("binding", json!(b.to_string()));
    }
    annotations.set("limits", json!(limits));
    Activation {
        namespace: EntityPath::namespace(&user.namespace.name),
        name: a.name.clone(),
        subject: user.subject.clone(),
        activation_id: run.id,
        start: run.start,
        end: now_ms().max(run.start),
        duration: Some(run.duration),
        cause: run.cause,
        response: run.response,
        logs: run.logs,
        version: a.version,
        publish: false,
        annotations,
    }
}

/// The draft record of a sequence or composition starting now (`start`): what it gets if it
/// never ends on its own (see `running`).
pub(crate) fn draft(
    user: &Identity,
    action: &ResolvedAction,
    id: &ActivationId,
    cause: Option<&ActivationId>,
    transid: &TransactionId,
    conductor: bool,
) -> Activation {
    let start = now_ms();
    composite_record(
        user,
        action,
        CompositeRun {
            id: id.clone(),
            cause: cause.cloned(),
            start,
            transid_start: transid.start,
            duration: 0,
            max_memory: None,
            response: ActivationResponse::whisk_error(super::running::SHUTDOWN),
            logs: Vec::new(),
            conductor,
        },
    )
}

/// Whether `user`'s namespace keeps activation records.
pub(crate) fn stores(user: &Identity) -> bool {
    user.limits.store_activations != Some(false)
}

/// Registers a (nested or topmost) run with its draft; a no-op for a topmost run, registered
/// when it was accepted.
pub(crate) fn enter(
    engine: &Engine,
    user: &Identity,
    action: &ResolvedAction,
    id: &ActivationId,
    cause: Option<&ActivationId>,
    transid: &TransactionId,
    conductor: bool,
) {
    let d = draft(user, action, id, cause, transid, conductor);
    engine.inner.running.enter(&d, stores(user));
}

/// Accepts a topmost run: journals and registers its draft (see `running`).
pub(crate) async fn accept(
    engine: &Engine,
    user: &Identity,
    action: &ResolvedAction,
    id: &ActivationId,
    cause: Option<&ActivationId>,
    transid: &TransactionId,
    conductor: bool,
) -> faas_core::Result<()> {
    let d = draft(user, action, id, cause, transid, conductor);
    engine.inner.accept_composition(&d, stores(user)).await
}

/// Publishes the user event of a record the engine wrote (when enabled) and stores the
/// record, unless the namespace keeps no activations.
pub(crate) async fn store_record(engine: &Engine, user: &Identity, record: &Activation) {
    engine.inner.publish_activation_event(user, record);
    if user.limits.store_activations == Some(false) {
        return;
    }
    if let Err(e) = engine.store().put_activation(record).await {
        tracing::error!(error = %faas_core::Chain(&e), activation_id = %record.activation_id, "storing an activation record failed");
    }
}

/// One run of a sequence or of a conductor action's composition: who runs what, on which
/// input, as which activation, caused by which (`None` for a topmost run).
pub(crate) struct RunArgs<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) user: Identity,
    pub(crate) action: ResolvedAction,
    pub(crate) payload: Option<Value>,
    pub(crate) transid: TransactionId,
    pub(crate) id: ActivationId,
    pub(crate) cause: Option<ActivationId>,
}

impl RunArgs<'_> {
    /// Registers the run with its draft (see [`enter`]); returns its start (epoch ms) and the
    /// limit on the length of sequences and compositions.
    pub(crate) fn begin(&self, conductor: bool) -> (u64, usize) {
        let start = now_ms();
        let (action, cause) = (&self.action, self.cause.as_ref());
        enter(
            self.engine,
            &self.user,
            action,
            &self.id,
            cause,
            &self.transid,
            conductor,
        );
        let limit = self.engine.config().limits.sequence_max_length as usize;
        (start, limit)
    }
}

impl<'a> Component<'a> {
    /// A run of `action` nested in this component's enclosing run, as a new activation.
    pub(crate) fn nested(&self, action: ResolvedAction, payload: Option<Value>) -> RunArgs<'a> {
        RunArgs {
            engine: self.engine,
            user: self.user.clone(),
            action,
            payload,
            transid: self.transid.clone(),
            id: ActivationId::generate(),
            cause: Some(self.cause.clone()),
        }
    }
}

/// What a top-level composite invoke runs: a sequence or a conductor action's composition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Composite {
    Sequence,
    Conductor,
}

/// A top-level invoke of a sequence or a conductor action: runs it in its own task (holding
/// the caller's in-flight slot until it ends); blocking callers wait up to their wait for its
/// record.
pub(super) async fn invoke(
    engine: &Engine,
    user: Identity,
    action: ResolvedAction,
    req: super::InvokeRequest,
    ticket: Option<super::throttle::Ticket>,
    what: Composite,
) -> faas_core::Result<super::Outcome> {
    let id = req
        .activation_id
        .clone()
        .unwrap_or_else(ActivationId::generate);
    let engine2 = engine.clone();
    let run_id = id.clone();
    let super::InvokeRequest {
        payload,
        transid,
        cause,
        blocking,
        wait,
        ..
    } = req;
    let conductor = what == Composite::Conductor;
    accept(
        engine,
        &user,
        &action,
        &id,
        cause.as_ref(),
        &transid,
        conductor,
    )
    .await?;
    let task = tokio::spawn(async move {
        let _ticket = ticket;
        let mut counts = Counts::default();
        let run = RunArgs {
            engine: &engine2,
            user,
            action,
            payload,
            transid,
            id: run_id,
            cause,
        };
        match what {
            Composite::Sequence => super::sequence::run(run, &mut counts).await,
            Composite::Conductor => super::conductor::run(run, &mut counts).await,
        }
    });
    engine.inner.running.set_task(&id, task.abort_handle());
    super::await_task(id, task, blocking, wait).await
}
