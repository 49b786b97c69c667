module github.com/nfqueue-go/nfqueue/cmd/nfq

go 1.25.0

replace github.com/nfqueue-go/nfqueue => ../../

replace github.com/nfqueue-go/nfqueue/rules => ../../rules

require (
	github.com/gopacket/gopacket v1.7.7
	github.com/nfqueue-go/nfqueue v0.0.0-00010101000000-000000000000
	github.com/nfqueue-go/nfqueue/rules v0.0.0-00010101000000-000000000000
	golang.org/x/sys v0.47.0
)

require (
	github.com/google/go-cmp v0.6.0 // indirect
	github.com/google/nftables v0.3.0 // indirect
	github.com/mdlayher/netlink v1.7.3-0.20250113171957-fbb4dce95f42 // indirect
	github.com/mdlayher/socket v0.5.0 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sync v0.6.0 // indirect
)
