package natskvl2

// KeyToken is the KV key under which key is stored, for the conformance
// harness's foreign writes.
func KeyToken(key string) string {
	token, _ := keyToken(key)
	return token
}
