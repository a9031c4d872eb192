package backplane_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stratacache/strata/backplane"
)

func encoded(t *testing.T) []byte {
	t.Helper()
	m := backplane.Message{Cache: "c", Source: "node-a", Seq: 7, Action: backplane.ActionRemove, Key: "user:1", Timestamp: 42}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyringSealOpen(t *testing.T) {
	old, cur := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	signer, _ := backplane.NewKeyring(cur, old)
	verifier, _ := backplane.NewKeyring(old, cur) // rotation: either key verifies
	sealed, err := signer.Seal(encoded(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backplane.DecodeMessage(sealed); err == nil {
		t.Fatal("a sealed payload decoded without Open")
	}
	body, err := verifier.Open(nil, sealed)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backplane.DecodeMessage(body)
	if err != nil || m.Key != "user:1" || m.Seq != 7 {
		t.Fatalf("opened message %+v, %v", m, err)
	}
}

func TestKeyringRejects(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	kr, _ := backplane.NewKeyring(key)
	other, _ := backplane.NewKeyring(bytes.Repeat([]byte("x"), 32))
	sealed, _ := kr.Seal(encoded(t))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-SignatureTail-1] ^= 1 // a bit of the key
	forged, _ := other.Seal(encoded(t))
	cases := map[string][]byte{
		"unsigned":    encoded(t),
		"tampered":    tampered,
		"wrong key":   forged,
		"empty":       nil,
		"short":       sealed[:10],
		"sig dropped": sealed[:len(sealed)-backplane.SignatureLen],
	}
	for name, p := range cases {
		if _, err := kr.Open(nil, p); !errors.Is(err, backplane.ErrBadSignature) {
			t.Errorf("%s: Open = %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := backplane.NewKeyring([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

const SignatureTail = backplane.SignatureLen

func FuzzKeyringOpen(f *testing.F) {
	kr, _ := backplane.NewKeyring(bytes.Repeat([]byte("k"), 32))
	m := backplane.Message{Cache: "c", Source: "s", Seq: 1, Action: backplane.ActionSet, Key: "k"}
	b, _ := m.AppendBinary(nil)
	sealed, _ := kr.Seal(b)
	f.Add(sealed)
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		body, err := kr.Open(nil, p)
		if err == nil {
			backplane.DecodeMessage(body) // must not panic
		}
	})
}
