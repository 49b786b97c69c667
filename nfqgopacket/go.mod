module github.com/nfqueue-go/nfqueue/nfqgopacket

go 1.25.0

replace github.com/nfqueue-go/nfqueue => ../

require (
	github.com/gopacket/gopacket v1.7.7
	github.com/nfqueue-go/nfqueue v0.0.0-00010101000000-000000000000
)

require golang.org/x/sys v0.47.0 // indirect
