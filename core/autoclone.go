package core

import "fmt"

// cloned returns a copy of v, made by the serializer, when AutoClone is on,
// else v itself.
func cloned[T any](c *Cache, key string, v T) (T, error) {
	if c.cfg.cloner == nil {
		return v, nil // inlined: the common case costs no call (every L1 hit asks)
	}
	return deepCopy(c, key, v)
}

// deepCopy is cloned with AutoClone on.
func deepCopy[T any](c *Cache, key string, v T) (T, error) {
	b, err := c.cfg.cloner.Marshal(v)
	if err != nil {
		return v, fmt.Errorf("core: AutoClone of key %q: encoding %T: %w", key, v, err)
	}
	var out T
	if err := c.cfg.cloner.Unmarshal(b, &out); err != nil {
		return v, fmt.Errorf("core: AutoClone of key %q: decoding %T: %w", key, v, err)
	}
	return out, nil
}
