package apiserver

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// output is what the client asked to receive.
type output struct {
	// Media is the serialization: JSON, YAML or protobuf.
	Media string
	// As is "", "Table", "PartialObjectMetadata" or "PartialObjectMetadataList".
	As string
	// Info serializes objects in Media.
	Info runtime.SerializerInfo
}

type codecs struct {
	factory serializer.CodecFactory
	json    runtime.SerializerInfo
	yaml    runtime.SerializerInfo
	proto   runtime.SerializerInfo
}

func newCodecs(scheme *runtime.Scheme) *codecs {
	// Not EnableStrict: that makes the plain serializers strict as well, and
	// fieldValidation=Ignore must decode without reporting unknown fields.
	// StrictSerializer is strict either way.
	f := serializer.NewCodecFactory(scheme)
	c := &codecs{factory: f}
	for _, info := range f.SupportedMediaTypes() {
		switch info.MediaType {
		case mediaJSON:
			c.json = info
		case mediaYAML:
			c.yaml = info
		case mediaProtobuf:
			c.proto = info
		}
	}
	return c
}

// protoCapable reports whether obj has a protobuf encoding (PodPreset does not).
func protoCapable(obj runtime.Object) bool {
	_, ok := obj.(interface{ Marshal() ([]byte, error) })
	return ok
}

// negotiate picks the reply format from the Accept header, in the client's
// order of preference. tableOK says whether Table output is possible.
func (c *codecs) negotiate(r *http.Request, sample runtime.Object) (output, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return output{Media: mediaJSON, Info: c.json}, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		as := params["as"]
		if as != "" {
			if params["g"] != "meta.k8s.io" || (params["v"] != "v1" && params["v"] != "v1beta1") {
				continue
			}
			if as != "Table" && as != "PartialObjectMetadata" && as != "PartialObjectMetadataList" {
				continue
			}
		}
		switch mt {
		case mediaJSON, "*/*", "application/*":
			return output{Media: mediaJSON, As: as, Info: c.json}, nil
		case mediaYAML:
			return output{Media: mediaYAML, As: as, Info: c.yaml}, nil
		case mediaProtobuf:
			if as == "" && sample != nil && !protoCapable(sample) {
				continue
			}
			return output{Media: mediaProtobuf, As: as, Info: c.proto}, nil
		}
	}
	return output{}, statusError(http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
		fmt.Sprintf("only the following media types are accepted: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf))
}

// bodySerializer returns the serializer for a request's Content-Type.
func (c *codecs) bodySerializer(r *http.Request) (runtime.SerializerInfo, string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return c.json, mediaJSON, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return runtime.SerializerInfo{}, "", unsupportedMedia(ct)
	}
	switch mt {
	case mediaJSON:
		return c.json, mt, nil
	case mediaYAML:
		return c.yaml, mt, nil
	case mediaProtobuf:
		return c.proto, mt, nil
	}
	return runtime.SerializerInfo{}, "", unsupportedMedia(ct)
}

func unsupportedMedia(ct string) error {
	return statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf))
}

func statusError(code int32, reason metav1.StatusReason, msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: code, Reason: reason, Message: msg,
	}}
}
