// Package compress is a serializer.Serializer that compresses what another
// serializer produces, with zstd or S2 (github.com/klauspost/compress),
// when it is large enough for compression to pay.
//
// Every encoding starts with one format byte:
//
//	0  plain: the inner serializer's bytes follow as they are
//	1  zstd:  one zstd frame (RFC 8878) follows, declaring its content size
//	          and carrying its checksum
//	2  S2:    an S2 block follows, then the CRC-32C (Castagnoli) of the
//	          decoded bytes, 4 bytes little-endian
//
// Marshal compresses only encodings of at least Options.MinSize bytes, and
// keeps the plain form when compression does not make it smaller. Unmarshal
// reads all three forms whatever the options, so entries written with
// another threshold or algorithm stay readable: the options can change
// between deployments without breaking what L2 holds. An unknown format
// byte is an error (an entry written by a newer version, or not by this
// package), as is an empty input.
//
// Decompression is bounded: an entry that would decode to more than
// Options.MaxDecodedSize bytes is refused with an error wrapping
// ErrTooLarge before that much memory is used, so a hostile or corrupt
// entry in a shared L2 (a "zip bomb") is a miss, not an out-of-memory
// crash.
//
// Adding the wrapper in front of a serializer changes the bytes in L2 like
// changing the serializer does: the old entries become misses (core counts
// them as corrupt and calls the factory) unless their first byte happens to
// be a format byte. Deploy it with a new Options.KeyPrefix on the cache, or
// accept one miss per entry.
package compress
