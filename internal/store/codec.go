package store

import (
	"bytes"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// jsonCodec keeps objects as JSON with their apiVersion and kind, so a
// value read back from etcd decodes to the right Go type.
type jsonCodec struct {
	s *json.Serializer
}

// NewJSONCodec returns a codec for the types of scheme.
func NewJSONCodec(scheme *runtime.Scheme) Codec {
	return &jsonCodec{s: json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{})}
}

func (c *jsonCodec) Encode(obj runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.s.Encode(obj, &buf); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func (c *jsonCodec) Decode(data []byte) (runtime.Object, error) {
	obj, _, err := c.s.Decode(data, nil, nil)
	return obj, err
}
