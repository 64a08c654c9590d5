package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodConfigurationReachesTheContainer checks, from inside one
// container, what the pod spec asks for: environment from values,
// ConfigMaps, Secrets and the downward API; configMap, secret and
// downwardAPI volumes, subPath and readOnly mounts; the user; a read-only
// root; the hostname and /etc/hosts; the service account token volume.
func TestPodConfigurationReachesTheContainer(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data: map[string]string{"color": "blue", "file.txt": "from-configmap"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data: map[string][]byte{"password": []byte("s3cret")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uid, yes := int64(65534), true
	script := strings.Join([]string{
		`echo "env=$GREETING/$COLOR/$PASSWORD/$POD_NAME/$MY_NS/$CPU_LIMIT/$FROM_ALL_color"`,
		`echo "files=$(cat /config/file.txt)/$(cat /secret/password)/$(cat /info/labels)"`,
		`echo "sub=$(cat /sub.txt)"`,
		`echo "id=$(id -u)"`,
		`touch /rootfs-write 2>/dev/null && echo root=rw || echo root=ro`,
		`touch /config/x 2>/dev/null && echo config=rw || echo config=ro`,
		`sa=/var/run/secrets/kubernetes.io/serviceaccount; echo "sa=$(cat $sa/namespace)/$(head -c 3 $sa/token)/$(grep -c BEGIN $sa/ca.crt)"`,
		`echo "host=$(hostname)"; grep -c "$(hostname)" /etc/hosts`,
		`sleep 3600`,
	}, "; ")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "configured", Labels: map[string]string{"app": "cfg"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
			},
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid},
			Containers: []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sh", "-c", script},
				SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: &yes},
				Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
				Env: []corev1.EnvVar{
					{Name: "GREETING", Value: "hi"},
					{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "color"}}},
					{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "MY_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
				},
				EnvFrom: []corev1.EnvFromSource{{Prefix: "FROM_ALL_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/config"},
					{Name: "secret", MountPath: "/secret"},
					{Name: "info", MountPath: "/info"},
					{Name: "config", MountPath: "/sub.txt", SubPath: "file.txt"},
				},
			}},
		}}
	createPod(t, c, pod)
	waitPod(t, c, "default", "configured", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	var out string
	eventually(t, 10*time.Second, func() error {
		out = s.mustKubectl("logs", "configured")
		if !strings.Contains(out, "host=") {
			return errorf("logs so far: %q", out)
		}
		return nil
	})
	for _, want := range []string{
		"env=hi/blue/s3cret/configured/default/250/blue\n",
		"files=from-configmap/s3cret/app=\"cfg\"\n",
		"sub=from-configmap\n",
		"id=65534\n",
		"root=ro\n",
		"config=ro\n",
		"host=configured\n1\n",
		"sa=default/eyJ/1\n", // the service account's namespace, a JWT, the cluster CA
	} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}

	// A hostNetwork pod sees the node's network and hostname.
	hn := shPod("hostnet", "hostname; sleep 3600", corev1.RestartPolicyAlways)
	hn.Spec.HostNetwork = true
	createPod(t, c, hn)
	p := waitPod(t, c, "default", "hostnet", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Status.PodIP != p.Status.HostIP {
		t.Errorf("hostNetwork pod IP %s, node IP %s", p.Status.PodIP, p.Status.HostIP)
	}
}
