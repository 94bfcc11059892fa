// mqadmin is not built yet: it arrives with the NameServer/Broker and client issues.
#if canImport(Glibc)
import Glibc
#endif
import Node

print("mqadmin: not available yet in this build (see the project's open issues); use 'bench store'")
exit(2)
