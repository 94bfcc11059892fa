// The put pipeline and master/slave + DLedger replication arrive with later issues.
import IndexFile
