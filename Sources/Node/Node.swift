// Remoting, NameServer, Broker and the Swift client arrive with later issues.
import Replication
