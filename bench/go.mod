module github.com/nfqueue-go/nfqueue/bench

go 1.25.0

replace github.com/nfqueue-go/nfqueue => ../

require (
	github.com/chifflier/nfqueue-go v0.0.0-20170228160439-61ca646babef
	github.com/florianl/go-nfqueue/v2 v2.1.0
	github.com/nfqueue-go/nfqueue v0.0.0-00010101000000-000000000000
	golang.org/x/sys v0.47.0
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/mdlayher/netlink v1.9.0 // indirect
	github.com/mdlayher/socket v0.5.1 // indirect
	golang.org/x/net v0.50.0 // indirect
	golang.org/x/sync v0.19.0 // indirect
)
