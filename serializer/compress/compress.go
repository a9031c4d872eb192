package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/stratacache/strata/serializer"
)

// Algorithm is a compression algorithm. Its value is the format byte of
// the encodings it produces.
type Algorithm uint8

// The algorithms.
const (
	// Zstd compresses well at a good speed; the default.
	Zstd Algorithm = 1
	// S2 (a faster Snappy) compresses less but several times faster.
	S2 Algorithm = 2
)

func (a Algorithm) String() string {
	switch a {
	case Zstd:
		return "zstd"
	case S2:
		return "s2"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// formatPlain is the format byte of an uncompressed encoding.
const formatPlain = 0

// Defaults of Options.
const (
	// DefaultMinSize is the smallest inner encoding compressed by default:
	// below it, compression saves little and costs a frame header.
	DefaultMinSize = 1 << 10
	// DefaultMaxDecodedSize bounds a decompressed entry by default.
	DefaultMaxDecodedSize = 64 << 20
)

// ErrTooLarge is wrapped by the error of Unmarshal for an entry that would
// decompress to more than Options.MaxDecodedSize bytes.
var ErrTooLarge = errors.New("compress: decoded size exceeds MaxDecodedSize")

// Options configure a Serializer. A nil *Options gives the defaults.
type Options struct {
	// Algorithm compresses new encodings; zero means Zstd. Unmarshal reads
	// every algorithm whatever this says.
	Algorithm Algorithm
	// MinSize is the length, in bytes, from which the inner serializer's
	// encoding is compressed; shorter ones are stored plain. Zero means
	// DefaultMinSize; 1 compresses everything not empty.
	MinSize int
	// MaxDecodedSize is the longest decompressed encoding Unmarshal
	// accepts, in bytes; zero means DefaultMaxDecodedSize.
	MaxDecodedSize int
}

// Serializer wraps a serializer.Serializer with compression. It is safe for
// concurrent use if the inner serializer is.
type Serializer struct {
	inner      serializer.Serializer
	algorithm  Algorithm
	minSize    int
	maxDecoded int
	// zstdDecoder, made on first use, is bounded by maxDecoded.
	zstdDecoder func() *zstd.Decoder
}

var _ serializer.Serializer = (*Serializer)(nil)

// New returns a Serializer that compresses inner's encodings as opts say.
// A nil inner or an invalid option is an error naming it.
func New(inner serializer.Serializer, opts *Options) (*Serializer, error) {
	if inner == nil {
		return nil, errors.New("compress: the inner serializer is nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch o.Algorithm {
	case 0:
		o.Algorithm = Zstd
	case Zstd, S2:
	default:
		return nil, fmt.Errorf("compress: Options.Algorithm %d is unknown (want compress.Zstd or compress.S2)", uint8(o.Algorithm))
	}
	switch {
	case o.MinSize < 0:
		return nil, fmt.Errorf("compress: Options.MinSize %d is negative", o.MinSize)
	case o.MinSize == 0:
		o.MinSize = DefaultMinSize
	}
	switch {
	case o.MaxDecodedSize < 0:
		return nil, fmt.Errorf("compress: Options.MaxDecodedSize %d is negative", o.MaxDecodedSize)
	case o.MaxDecodedSize == 0:
		o.MaxDecodedSize = DefaultMaxDecodedSize
	}
	s := &Serializer{inner: inner, algorithm: o.Algorithm, minSize: o.MinSize, maxDecoded: o.MaxDecodedSize}
	s.zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(uint64(s.maxDecoded)))
		if err != nil {
			panic("compress: zstd.NewReader with valid options failed: " + err.Error())
		}
		return d
	})
	return s, nil
}

// Marshal encodes v with the inner serializer and, if the encoding is at
// least MinSize long and compresses to fewer bytes, compresses it. An
// encoding longer than MaxDecodedSize is an error wrapping ErrTooLarge
// (Unmarshal would refuse it); the inner serializer's errors are returned
// as they are.
func (s *Serializer) Marshal(v any) ([]byte, error) {
	b, err := s.inner.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) > s.maxDecoded {
		return nil, fmt.Errorf("compress: marshal %T: the encoding has %d bytes: %w (%d)", v, len(b), ErrTooLarge, s.maxDecoded)
	}
	if len(b) >= s.minSize {
		// Compress into a pooled scratch buffer, then hand out an exact
		// copy: the compressed size is not known in advance.
		scratch := getBuffer()
		defer putBuffer(scratch)
		out := (*scratch)[:0]
		switch s.algorithm {
		case Zstd:
			out = zstdEncoder().EncodeAll(b, append(out, byte(Zstd)))
		case S2:
			if n := 1 + s2.MaxEncodedLen(len(b)) + 4; cap(out) < n {
				out = make([]byte, 0, n)
			}
			out = out[:1+s2.MaxEncodedLen(len(b))]
			out[0] = byte(S2)
			n := len(s2.Encode(out[1:], b))
			out = binary.LittleEndian.AppendUint32(out[:1+n], crc32.Checksum(b, castagnoli))
		}
		*scratch = out
		if len(out) < 1+len(b) {
			return bytes.Clone(out), nil
		}
	}
	out := make([]byte, 1+len(b))
	out[0] = formatPlain
	copy(out[1:], b)
	return out, nil
}

// Unmarshal decodes data, in any of the three formats, into the value v
// points to with the inner serializer. Empty data, an unknown format byte,
// corrupt compressed data and an entry that would decompress to more than
// MaxDecodedSize (ErrTooLarge) are errors naming v's type; the inner
// serializer's errors are returned as they are. It keeps no reference to
// data.
func (s *Serializer) Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return fmt.Errorf("compress: unmarshal into %T: empty data (want a format byte first)", v)
	}
	payload := data[1:]
	switch data[0] {
	case formatPlain:
		return s.inner.Unmarshal(payload, v)
	case byte(Zstd), byte(S2):
	default:
		return fmt.Errorf("compress: unmarshal into %T: unknown format byte %d (want 0 plain, 1 zstd or 2 s2; written by a newer version, or not by this package?)", v, data[0])
	}
	buf := getBuffer()
	defer putBuffer(buf)
	var err error
	if data[0] == byte(Zstd) {
		*buf, err = s.decodeZstd(payload, (*buf)[:0])
	} else {
		*buf, err = s.decodeS2(payload, (*buf)[:0])
	}
	if err != nil {
		return fmt.Errorf("compress: unmarshal into %T: %w", v, err)
	}
	return s.inner.Unmarshal(*buf, v)
}

func (s *Serializer) decodeZstd(payload, dst []byte) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(payload); err != nil {
		return dst, fmt.Errorf("zstd: %w", err)
	}
	if h.HasFCS && h.FrameContentSize > uint64(s.maxDecoded) {
		return dst, fmt.Errorf("zstd: the frame declares %d bytes: %w (%d)", h.FrameContentSize, ErrTooLarge, s.maxDecoded)
	}
	out, err := s.zstdDecoder().DecodeAll(payload, dst)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || len(out) > s.maxDecoded:
		// Frames after the first, or a window larger than allowed: the
		// decoder stopped at its bound.
		return dst, fmt.Errorf("zstd: %w (%d)", ErrTooLarge, s.maxDecoded)
	case err != nil:
		return dst, fmt.Errorf("zstd: %w", err)
	}
	return out, nil
}

func (s *Serializer) decodeS2(payload, dst []byte) ([]byte, error) {
	if len(payload) < 4 {
		return dst, errors.New("s2: truncated data")
	}
	block, sum := payload[:len(payload)-4], binary.LittleEndian.Uint32(payload[len(payload)-4:])
	n, err := s2.DecodedLen(block)
	if err != nil {
		return dst, fmt.Errorf("s2: %w", err)
	}
	if n > s.maxDecoded {
		return dst, fmt.Errorf("s2: the block declares %d bytes: %w (%d)", n, ErrTooLarge, s.maxDecoded)
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	out, err := s2.Decode(dst[:n], block)
	if err != nil {
		return dst, fmt.Errorf("s2: %w", err)
	}
	if crc32.Checksum(out, castagnoli) != sum {
		return dst, errors.New("s2: checksum mismatch: the data is corrupt")
	}
	return out, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zstdEncoder is shared by every Serializer: EncodeAll is safe for
// concurrent use, and the encoder holds a pool sized by GOMAXPROCS, made on
// first use. (Each Serializer has its own decoder, bounded by its
// MaxDecodedSize.)
var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		panic("compress: zstd.NewWriter with fixed options failed: " + err.Error())
	}
	return e
})

// Buffers for compressed output before it is copied out, and for
// decompressed data (the inner serializer keeps no reference to what it
// decodes), reused. Buffers over maxPooled are not kept.
const maxPooled = 1 << 20

var buffers = sync.Pool{New: func() any { return new([]byte) }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= maxPooled {
		buffers.Put(b)
	}
}
