module github.com/stratacache/strata

go 1.26

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	github.com/viccon/sturdyc v1.1.5 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
