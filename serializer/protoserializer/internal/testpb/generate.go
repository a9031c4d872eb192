// Package testpb holds the protocol buffer messages of protoserializer's
// tests and benchmarks.
package testpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative testpb.proto
