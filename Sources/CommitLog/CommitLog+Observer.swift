/// What a replicated log above the commit log (DLedger) needs from it: a say in every local append, the bytes of
/// each append in log order, and a limit on what readers may see. The commit log never learns why.
public protocol AppendObserver: AnyObject, Sendable {
    /// Runs under the append lock before room is reserved or a queue offset taken: an error refuses the append
    /// and nothing is stored. `sizeBytes` is the record's (or batch's) encoded size; `token` the put's (0: none).
    func admit(sizeBytes: Int, token: UInt64) -> StoreError?
    /// Runs under the append lock once the record (or batch) is encoded at `position` and the log's end moved past
    /// it (readers limited by `limitVisibility` still do not see it): the calls come in log order. `bytes` lives
    /// only for the call (it may be the write arena).
    func appended(_ bytes: UnsafeRawBufferPointer, at position: UInt64, token: UInt64)
}

extension CommitLog {
    /// Installs the function called once after each batch of `onDurable` calls (a group commit's puts, or those a
    /// deadline sweep timed out), on the same thread: a handler that only queues its answers hands them on here,
    /// once per batch. Call once, before the first put.
    public func onDurableBatchEnd(_ handler: @escaping @Sendable () -> Void) {
        waiters.batchEnd = handler
    }

    /// Installs the observer of local appends (`append`, `put`, batches; never `appendReplicated`). Call once,
    /// before the first put.
    public func observeAppends(_ observer: AppendObserver) {
        precondition(self.observer == nil, "an append observer is installed once")
        self.observer = observer
    }

    /// Readers that follow `visibleOffset` (the dispatcher) see nothing at or past `offset`: DLedger sets it to
    /// the end of the entries a quorum committed. `.max` lifts the limit. Wakes the waiting readers.
    /// **Thread:** any.
    public func limitVisibility(to offset: UInt64) {
        shared.visibleLimit.store(offset, ordering: .releasing)
        wakeDataWaiters()
    }

    /// Runs `body` under the append lock: no local append, truncation or replicated append runs meanwhile
    /// (DLedger opens and closes its write gate here, so an append is either wholly before or wholly after).
    public func withAppendsHeld<R>(_ body: () throws(StoreError) -> R) throws(StoreError) -> R {
        try appendLock.withLock { (state) throws(StoreError) -> R in
            sequencer.drain(state.nextTicket)
            return try body()
        }
    }
}
