// Consume queues, the key index, dispatch and the MessageStore facade arrive with the next issue.
// The target exists so the module graph (CommitLog <- IndexFile <- Replication <- Node) is in place.
import CommitLog
