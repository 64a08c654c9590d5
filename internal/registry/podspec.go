package registry

import (
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// This file holds what every pod spec shares, whether it belongs to a Pod or
// to a workload's template: Kubernetes' defaults (pkg/apis/core/v1) and
// validation (pkg/apis/core/validation), rewritten for the v1 types skiff
// stores. Pod-only rules live in pods.go.

// defaultPodSpec applies Kubernetes' defaults to a pod spec, whether of a
// Pod or of a workload's pod template.
func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = new(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// serviceAccount is the deprecated spelling of serviceAccountName; the
	// v1 conversion fills one from the other, so both always read the same.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName

	for i := range spec.Volumes {
		defaultVolumeSource(&spec.Volumes[i].VolumeSource)
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		defaultContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	roundResourceList(spec.Overhead)
	if spec.Resources != nil {
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
}

// defaultContainer fills a container's pull policy, termination message
// settings, port protocols, downward API versions, probes and hooks.
func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil {
			defaultFieldSelector(vf.FieldRef)
		}
	}
	roundResourceList(c.Resources.Limits)
	roundResourceList(c.Resources.Requests)
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h != nil {
				defaultHTTPGet(h.HTTPGet)
			}
		}
	}
}

// defaultPullPolicy is Always for :latest (or no tag at all) and IfNotPresent
// otherwise: a pinned tag or digest is worth caching.
func defaultPullPolicy(image string) corev1.PullPolicy {
	if imageTag(image) == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTag returns the tag of an image reference: "latest" when it names
// neither a tag nor a digest, "" when it names only a digest or is malformed.
func imageTag(image string) string {
	if image == "" {
		return ""
	}
	name, digest, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	if digest != "" {
		return ""
	}
	return "latest"
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = new("")
	}
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func defaultFieldSelector(fs *corev1.ObjectFieldSelector) {
	if fs != nil && fs.APIVersion == "" {
		fs.APIVersion = "v1"
	}
}

// defaultVolumeSource makes a volume without a source an emptyDir and fills
// the defaults of the source it has.
func defaultVolumeSource(vs *corev1.VolumeSource) {
	if len(setFields(*vs)) == 0 {
		vs.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if vs.HostPath != nil && vs.HostPath.Type == nil {
		vs.HostPath.Type = new(corev1.HostPathUnset)
	}
	if vs.Secret != nil && vs.Secret.DefaultMode == nil {
		vs.Secret.DefaultMode = new(corev1.SecretVolumeSourceDefaultMode)
	}
	if vs.ConfigMap != nil && vs.ConfigMap.DefaultMode == nil {
		vs.ConfigMap.DefaultMode = new(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if d := vs.DownwardAPI; d != nil {
		if d.DefaultMode == nil {
			d.DefaultMode = new(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		for i := range d.Items {
			defaultFieldSelector(d.Items[i].FieldRef)
		}
	}
	if p := vs.Projected; p != nil {
		if p.DefaultMode == nil {
			p.DefaultMode = new(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for _, s := range p.Sources {
			if s.DownwardAPI != nil {
				for i := range s.DownwardAPI.Items {
					defaultFieldSelector(s.DownwardAPI.Items[i].FieldRef)
				}
			}
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.ExpirationSeconds == nil {
				s.ServiceAccountToken.ExpirationSeconds = new(int64(3600))
			}
		}
	}
	if vs.ISCSI != nil && vs.ISCSI.ISCSIInterface == "" {
		vs.ISCSI.ISCSIInterface = "default"
	}
	if r := vs.RBD; r != nil {
		defaultRBD(&r.RBDPool, &r.RadosUser, &r.Keyring)
	}
	defaultAzureDisk(vs.AzureDisk)
	if s := vs.ScaleIO; s != nil {
		defaultScaleIO(&s.StorageMode, &s.FSType)
	}
	if e := vs.Ephemeral; e != nil && e.VolumeClaimTemplate != nil {
		defaultPersistentVolumeClaimSpec(&e.VolumeClaimTemplate.Spec)
	}
	if img := vs.Image; img != nil && img.PullPolicy == "" {
		img.PullPolicy = defaultPullPolicy(img.Reference)
	}
}

func defaultRBD(pool, user, keyring *string) {
	if *pool == "" {
		*pool = "rbd"
	}
	if *user == "" {
		*user = "admin"
	}
	if *keyring == "" {
		*keyring = "/etc/ceph/keyring"
	}
}

func defaultScaleIO(storageMode, fsType *string) {
	if *storageMode == "" {
		*storageMode = "ThinProvisioned"
	}
	if *fsType == "" {
		*fsType = "xfs"
	}
}

func defaultAzureDisk(a *corev1.AzureDiskVolumeSource) {
	if a == nil {
		return
	}
	if a.CachingMode == nil {
		a.CachingMode = new(corev1.AzureDataDiskCachingReadWrite)
	}
	if a.FSType == nil {
		a.FSType = new("ext4")
	}
	if a.ReadOnly == nil {
		a.ReadOnly = new(false)
	}
	if a.Kind == nil {
		a.Kind = new(corev1.AzureSharedBlobDisk)
	}
}

// roundResourceList rounds quantities up to milli-units, as the API server
// does, which also puts them in canonical form ("0.5" becomes "500m").
func roundResourceList(rl corev1.ResourceList) {
	for name, q := range rl {
		q.RoundUp(resource.Milli)
		rl[name] = q
	}
}

// validatePodSpec checks a pod spec at path (e.g. spec or spec.template.spec).
func validatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	return checkPodSpec(spec, false, path)
}

// checkPodSpec is validatePodSpec; isPod is true for a Pod's own spec, which
// gets the stricter rules that templates are spared because defaulting has
// yet to run on the pods made from them.
func checkPodSpec(spec *corev1.PodSpec, isPod bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.TerminationGracePeriodSeconds == nil {
		errs = append(errs, field.Required(path.Child("terminationGracePeriodSeconds"), ""))
	}
	grace := spec.TerminationGracePeriodSeconds

	vols, volErrs := validateVolumes(spec.Volumes, path.Child("volumes"))
	errs = append(errs, volErrs...)
	errs = append(errs, validateContainers(spec.Containers, vols, grace, path.Child("containers"))...)
	errs = append(errs, validateInitContainers(spec.InitContainers, spec.Containers, vols, grace, path.Child("initContainers"))...)
	errs = append(errs, validateEphemeralContainers(spec, vols, path.Child("ephemeralContainers"))...)
	errs = append(errs, validateHostNetworkPorts(spec, isPod, path)...)

	errs = append(errs, validateOneOf(path.Child("restartPolicy"), spec.RestartPolicy,
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)...)
	errs = append(errs, validateOneOf(path.Child("dnsPolicy"), spec.DNSPolicy,
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)...)
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	errs = append(errs, validatePodSecurityContext(spec.SecurityContext, path.Child("securityContext"))...)
	for i, s := range spec.ImagePullSecrets {
		if s.Name == "" {
			errs = append(errs, field.Required(path.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	errs = append(errs, validateAffinity(spec.Affinity, path.Child("affinity"))...)
	errs = append(errs, validateDNSConfig(spec.DNSConfig, spec.DNSPolicy, path.Child("dnsConfig"))...)
	for i, g := range spec.ReadinessGates {
		errs = append(errs, validateQualifiedName(string(g.ConditionType), path.Child("readinessGates").Index(i).Child("conditionType"))...)
	}
	seenGates := sets.New[string]()
	for i, g := range spec.SchedulingGates {
		p := path.Child("schedulingGates").Index(i)
		errs = append(errs, validateQualifiedName(g.Name, p)...)
		if seenGates.Has(g.Name) {
			errs = append(errs, field.Duplicate(p, g.Name))
		}
		seenGates.Insert(g.Name)
	}
	errs = append(errs, validateTopologySpread(spec.TopologySpreadConstraints, path.Child("topologySpreadConstraints"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, path.Child("tolerations"))...)
	for i, a := range spec.HostAliases {
		p := path.Child("hostAliases").Index(i)
		errs = append(errs, validation.IsValidIP(p.Child("ip"), a.IP)...)
		for j, h := range a.Hostnames {
			errs = append(errs, validateName(h, nameIsDNSSubdomain, p.Child("hostnames").Index(j))...)
		}
	}

	if spec.ServiceAccountName != "" {
		errs = append(errs, validateName(spec.ServiceAccountName, nameIsDNSSubdomain, path.Child("serviceAccountName"))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, validateName(spec.NodeName, nameIsDNSSubdomain, path.Child("nodeName"))...)
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && (*d < 1 || *d > math.MaxInt32) {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *d, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	if spec.Hostname != "" {
		errs = append(errs, validateName(spec.Hostname, nameIsDNSLabel, path.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateName(spec.Subdomain, nameIsDNSLabel, path.Child("subdomain"))...)
	}
	if spec.PriorityClassName != "" {
		errs = append(errs, validateName(spec.PriorityClassName, nameIsDNSSubdomain, path.Child("priorityClassName"))...)
	}
	if spec.RuntimeClassName != nil {
		errs = append(errs, validateName(*spec.RuntimeClassName, nameIsDNSSubdomain, path.Child("runtimeClassName"))...)
	}
	if spec.PreemptionPolicy != nil {
		errs = append(errs, validateOneOf(path.Child("preemptionPolicy"), *spec.PreemptionPolicy,
			corev1.PreemptLowerPriority, corev1.PreemptNever)...)
	}
	errs = append(errs, validateResourceList(spec.Overhead, path.Child("overhead"))...)
	if spec.OS != nil {
		errs = append(errs, validateOneOf(path.Child("os", "name"), spec.OS.Name, corev1.Linux, corev1.Windows)...)
	}
	return errs
}

// validatePodTemplateSpec checks a workload's pod template at path
// (spec.template), including its labels and metadata.
func validatePodTemplateSpec(tmpl *corev1.PodTemplateSpec, path *field.Path) field.ErrorList {
	// Kubernetes reports template metadata at spec.template.labels, without
	// the metadata segment; kept for identical messages.
	errs := metav1validation.ValidateLabels(tmpl.Labels, path.Child("labels"))
	errs = append(errs, validateAnnotations(tmpl.Annotations, path.Child("annotations"))...)
	errs = append(errs, validatePodSpec(&tmpl.Spec, path.Child("spec"))...)
	if len(tmpl.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(path.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

// validateOneOf requires value to be set and one of allowed.
func validateOneOf[T ~string](path *field.Path, value T, allowed ...T) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	if !slices.Contains(allowed, value) {
		return field.ErrorList{field.NotSupported(path, value, allowed)}
	}
	return nil
}

// validateOptionalOneOf is validateOneOf for fields where empty is fine.
func validateOptionalOneOf[T ~string](path *field.Path, value T, allowed ...T) field.ErrorList {
	if value == "" {
		return nil
	}
	return validateOneOf(path, value, allowed...)
}

func validateQualifiedName(value string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(value) {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

// containerCheck carries what container validation needs from the pod spec.
type containerCheck struct {
	volumes map[string]corev1.VolumeSource
	grace   *int64
}

// validateContainers checks the regular containers: at least one, unique
// names, and the fields only they and sidecars may set.
func validateContainers(containers []corev1.Container, vols map[string]corev1.VolumeSource, grace *int64, path *field.Path) field.ErrorList {
	if len(containers) == 0 {
		return field.ErrorList{field.Required(path, "")}
	}
	check := containerCheck{volumes: vols, grace: grace}
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range containers {
		c := &containers[i]
		p := path.Index(i)
		errs = append(errs, check.common(c, p)...)
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names.Insert(c.Name)
		errs = append(errs, check.probesAndHooks(c, p)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(p.Child("restartPolicy"), "may not be set for non-init containers"))
		}
	}
	return append(errs, validateHostPortConflicts(containers, path)...)
}

// validateInitContainers checks init containers. Their names must not clash
// with regular containers; only sidecars (restartPolicy Always) may have
// probes and lifecycle hooks.
func validateInitContainers(inits, regular []corev1.Container, vols map[string]corev1.VolumeSource, grace *int64, path *field.Path) field.ErrorList {
	check := containerCheck{volumes: vols, grace: grace}
	var errs field.ErrorList
	names := sets.New[string]()
	for _, c := range regular {
		names.Insert(c.Name)
	}
	for i := range inits {
		c := &inits[i]
		p := path.Index(i)
		errs = append(errs, check.common(c, p)...)
		sidecar := false
		if c.RestartPolicy != nil {
			errs = append(errs, validateOneOf(p.Child("restartPolicy"), *c.RestartPolicy, corev1.ContainerRestartPolicyAlways)...)
			sidecar = *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		} else if c.Name != "" {
			names.Insert(c.Name)
		}
		// Init containers run one at a time, so only clashes within one count.
		errs = append(errs, validateHostPortConflicts([]corev1.Container{*c}, path)...)
		if sidecar {
			errs = append(errs, check.probesAndHooks(c, p)...)
			continue
		}
		const msg = "may not be set for init containers without restartPolicy=Always"
		if c.Lifecycle != nil {
			errs = append(errs, field.Forbidden(p.Child("lifecycle"), msg))
		}
		if c.LivenessProbe != nil {
			errs = append(errs, field.Forbidden(p.Child("livenessProbe"), msg))
		}
		if c.ReadinessProbe != nil {
			errs = append(errs, field.Forbidden(p.Child("readinessProbe"), msg))
		}
		if c.StartupProbe != nil {
			errs = append(errs, field.Forbidden(p.Child("startupProbe"), msg))
		}
	}
	return errs
}

// validateEphemeralContainers checks debug containers: unique names across
// all containers, an existing target, and none of the fields that would make
// the pod depend on them.
func validateEphemeralContainers(spec *corev1.PodSpec, vols map[string]corev1.VolumeSource, path *field.Path) field.ErrorList {
	if len(spec.EphemeralContainers) == 0 {
		return nil
	}
	check := containerCheck{volumes: vols, grace: spec.TerminationGracePeriodSeconds}
	var errs field.ErrorList
	others := sets.New[string]()
	for _, c := range slices.Concat(spec.Containers, spec.InitContainers) {
		others.Insert(c.Name)
	}
	all := others.Clone()
	for i := range spec.EphemeralContainers {
		ec := &spec.EphemeralContainers[i]
		p := path.Index(i)
		c := (*corev1.Container)(&ec.EphemeralContainerCommon)
		errs = append(errs, check.common(c, p)...)
		if all.Has(ec.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), ec.Name))
		}
		all.Insert(ec.Name)
		if ec.TargetContainerName != "" && !others.Has(ec.TargetContainerName) {
			errs = append(errs, field.NotFound(p.Child("targetContainerName"), ec.TargetContainerName))
		}
		const msg = "cannot be set for an Ephemeral Container"
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"ports", len(c.Ports) > 0},
			{"resources", len(c.Resources.Limits)+len(c.Resources.Requests)+len(c.Resources.Claims) > 0},
			{"resizePolicy", len(c.ResizePolicy) > 0},
			{"restartPolicy", c.RestartPolicy != nil},
			{"livenessProbe", c.LivenessProbe != nil},
			{"readinessProbe", c.ReadinessProbe != nil},
			{"startupProbe", c.StartupProbe != nil},
			{"lifecycle", c.Lifecycle != nil},
		} {
			if f.set {
				errs = append(errs, field.Forbidden(p.Child(f.name), msg))
			}
		}
		for j, vm := range c.VolumeMounts {
			if vm.SubPath != "" {
				errs = append(errs, field.Forbidden(p.Child("volumeMounts").Index(j).Child("subPath"), msg))
			}
			if vm.SubPathExpr != "" {
				errs = append(errs, field.Forbidden(p.Child("volumeMounts").Index(j).Child("subPathExpr"), msg))
			}
		}
	}
	return errs
}

// common applies the checks every kind of container shares.
func (check containerCheck) common(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else {
		errs = append(errs, validateName(c.Name, nameIsDNSLabel, path.Child("name"))...)
	}
	if c.Image == "" {
		errs = append(errs, field.Required(path.Child("image"), ""))
	}
	errs = append(errs, validateOneOf(path.Child("terminationMessagePolicy"), c.TerminationMessagePolicy,
		corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
	errs = append(errs, validateContainerPorts(c.Ports, path.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, path.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, path.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c, check.volumes, path.Child("volumeMounts"))...)
	errs = append(errs, validateVolumeDevices(c, check.volumes, path.Child("volumeDevices"))...)
	errs = append(errs, validateOneOf(path.Child("imagePullPolicy"), c.ImagePullPolicy,
		corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	errs = append(errs, validateResourceRequirements(&c.Resources, path.Child("resources"))...)
	errs = append(errs, validateSecurityContext(c.SecurityContext, path.Child("securityContext"))...)
	return errs
}

// probesAndHooks checks the fields regular containers and sidecars may set.
func (check containerCheck) probesAndHooks(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if l := c.Lifecycle; l != nil {
		if h := l.PostStart; h != nil {
			errs = append(errs, validateHandler(h.Exec, h.HTTPGet, h.TCPSocket, nil, h.Sleep, check.grace, path.Child("lifecycle", "postStart"))...)
		}
		if h := l.PreStop; h != nil {
			errs = append(errs, validateHandler(h.Exec, h.HTTPGet, h.TCPSocket, nil, h.Sleep, check.grace, path.Child("lifecycle", "preStop"))...)
		}
	}
	errs = append(errs, validateProbe(c.LivenessProbe, check.grace, path.Child("livenessProbe"))...)
	if p := c.LivenessProbe; p != nil && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(path.Child("livenessProbe", "successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	errs = append(errs, validateProbe(c.ReadinessProbe, check.grace, path.Child("readinessProbe"))...)
	if p := c.ReadinessProbe; p != nil && p.TerminationGracePeriodSeconds != nil {
		errs = append(errs, field.Invalid(path.Child("readinessProbe", "terminationGracePeriodSeconds"), *p.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
	}
	errs = append(errs, validateProbe(c.StartupProbe, check.grace, path.Child("startupProbe"))...)
	if p := c.StartupProbe; p != nil && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(path.Child("startupProbe", "successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	return errs
}

func validateProbe(p *corev1.Probe, grace *int64, path *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	errs := validateHandler(p.Exec, p.HTTPGet, p.TCPSocket, p.GRPC, nil, grace, path)
	for _, f := range []struct {
		name  string
		value int32
	}{
		{"initialDelaySeconds", p.InitialDelaySeconds},
		{"timeoutSeconds", p.TimeoutSeconds},
		{"periodSeconds", p.PeriodSeconds},
		{"successThreshold", p.SuccessThreshold},
		{"failureThreshold", p.FailureThreshold},
	} {
		if f.value < 0 {
			errs = append(errs, field.Invalid(path.Child(f.name), f.value, "must be greater than or equal to 0"))
		}
	}
	if t := p.TerminationGracePeriodSeconds; t != nil && *t <= 0 {
		errs = append(errs, field.Invalid(path.Child("terminationGracePeriodSeconds"), *t, "must be greater than 0"))
	}
	return errs
}

// validateHandler checks a probe or lifecycle handler: exactly one action,
// each well formed.
func validateHandler(exec *corev1.ExecAction, httpGet *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction,
	grpc *corev1.GRPCAction, sleep *corev1.SleepAction, grace *int64, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	one := func(name string, set bool, check func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n++; n > 1 {
			errs = append(errs, field.Forbidden(path.Child(name), "may not specify more than 1 handler type"))
			return
		}
		errs = append(errs, check(path.Child(name))...)
	}
	one("exec", exec != nil, func(p *field.Path) field.ErrorList {
		if len(exec.Command) == 0 {
			return field.ErrorList{field.Required(p.Child("command"), "")}
		}
		return nil
	})
	one("httpGet", httpGet != nil, func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if httpGet.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validatePortNumOrName(httpGet.Port, p.Child("port"))...)
		errs = append(errs, validateOneOf(p.Child("scheme"), httpGet.Scheme, corev1.URISchemeHTTP, corev1.URISchemeHTTPS)...)
		for _, h := range httpGet.HTTPHeaders {
			for _, msg := range validation.IsHTTPHeaderName(h.Name) {
				errs = append(errs, field.Invalid(p.Child("httpHeaders"), h.Name, msg))
			}
		}
		return errs
	})
	one("tcpSocket", tcp != nil, func(p *field.Path) field.ErrorList {
		return validatePortNumOrName(tcp.Port, p.Child("port"))
	})
	one("grpc", grpc != nil, func(p *field.Path) field.ErrorList {
		return validatePortNumOrName(intstr.FromInt32(grpc.Port), p.Child("port"))
	})
	one("sleep", sleep != nil, func(p *field.Path) field.ErrorList {
		if grace != nil && (sleep.Seconds < 0 || sleep.Seconds > *grace) {
			return field.ErrorList{field.Invalid(p, sleep.Seconds,
				fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *grace))}
		}
		return nil
	})
	if n == 0 {
		errs = append(errs, field.Required(path, "must specify a handler type"))
	}
	return errs
}

func validatePortNumOrName(port intstr.IntOrString, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Type == intstr.String {
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(path, port.StrVal, msg))
		}
		return errs
	}
	for _, msg := range validation.IsValidPortNum(port.IntValue()) {
		errs = append(errs, field.Invalid(path, port.IntValue(), msg))
	}
	return errs
}

var portProtocols = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

func validateContainerPorts(ports []corev1.ContainerPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, port := range ports {
		p := path.Index(i)
		if port.Name != "" {
			if msgs := validation.IsValidPortName(port.Name); len(msgs) > 0 {
				for _, msg := range msgs {
					errs = append(errs, field.Invalid(p.Child("name"), port.Name, msg))
				}
			} else if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(p.Child("name"), port.Name))
			} else {
				names.Insert(port.Name)
			}
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(p.Child("containerPort"), ""))
		} else {
			for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(p.Child("containerPort"), port.ContainerPort, msg))
			}
		}
		if port.HostPort != 0 {
			for _, msg := range validation.IsValidPortNum(int(port.HostPort)) {
				errs = append(errs, field.Invalid(p.Child("hostPort"), port.HostPort, msg))
			}
		}
		errs = append(errs, validateOneOf(p.Child("protocol"), port.Protocol, portProtocols...)...)
	}
	return errs
}

// validateHostPortConflicts rejects two ports claiming the same host port.
func validateHostPortConflicts(containers []corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for ci, c := range containers {
		for pi, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", port.Protocol, port.HostIP, port.HostPort)
			if seen.Has(key) {
				errs = append(errs, field.Duplicate(path.Index(ci).Child("ports").Index(pi).Child("hostPort"), key))
			}
			seen.Insert(key)
		}
	}
	return errs
}

// validateHostNetworkPorts requires host ports to equal container ports on
// the host network. A template may leave them 0: they are defaulted when the
// pod is made.
func validateHostNetworkPorts(spec *corev1.PodSpec, isPod bool, path *field.Path) field.ErrorList {
	if !spec.HostNetwork {
		return nil
	}
	var errs field.ErrorList
	for i, c := range spec.Containers {
		for j, port := range c.Ports {
			if (isPod || port.HostPort != 0) && port.HostPort != port.ContainerPort {
				errs = append(errs, field.Invalid(path.Child("containers").Index(i).Child("ports").Index(j).Child("hostPort"),
					port.HostPort, "must match `containerPort` when `hostNetwork` is true"))
			}
		}
	}
	return errs
}

// envFieldPaths are the pod fields env vars may read through fieldRef.
var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// volumeFieldPaths are the pod fields a downwardAPI volume may project.
var volumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}

var resourceFieldPaths = []string{
	"limits.cpu", "limits.ephemeral-storage", "limits.memory",
	"requests.cpu", "requests.ephemeral-storage", "requests.memory",
}

func validateEnv(vars []corev1.EnvVar, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range vars {
		p := path.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			for _, msg := range validation.IsRelaxedEnvVarName(ev.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), ev.Name, msg))
			}
		}
		if ev.ValueFrom == nil {
			continue
		}
		vp := p.Child("valueFrom")
		vf := ev.ValueFrom
		if vf.FieldRef != nil {
			errs = append(errs, validateFieldSelector(vf.FieldRef, envFieldPaths, vp.Child("fieldRef"))...)
		}
		if vf.ResourceFieldRef != nil {
			errs = append(errs, validateResourceFieldSelector(vf.ResourceFieldRef, false, vp.Child("resourceFieldRef"))...)
		}
		if vf.ConfigMapKeyRef != nil {
			errs = append(errs, validateKeySelector(vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key, vp.Child("configMapKeyRef"))...)
		}
		if vf.SecretKeyRef != nil {
			errs = append(errs, validateKeySelector(vf.SecretKeyRef.Name, vf.SecretKeyRef.Key, vp.Child("secretKeyRef"))...)
		}
		switch n := len(setFields(*vf)); {
		case n == 0:
			errs = append(errs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case ev.Value != "":
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
		case n > 1:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func validateEnvFrom(sources []corev1.EnvFromSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sources {
		p := path.Index(i)
		if s.Prefix != "" {
			for _, msg := range validation.IsRelaxedEnvVarName(s.Prefix) {
				errs = append(errs, field.Invalid(p.Child("prefix"), s.Prefix, msg))
			}
		}
		n := 0
		if s.ConfigMapRef != nil {
			n++
			errs = append(errs, validateRefName(s.ConfigMapRef.Name, p.Child("configMapRef", "name"))...)
		}
		if s.SecretRef != nil {
			n++
			errs = append(errs, validateRefName(s.SecretRef.Name, p.Child("secretRef", "name"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(path, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// validateRefName requires the name of a referenced ConfigMap or Secret.
func validateRefName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return validateName(name, nameIsDNSSubdomain, path)
}

func validateKeySelector(name, key string, path *field.Path) field.ErrorList {
	errs := validateName(name, nameIsDNSSubdomain, path.Child("name"))
	if key == "" {
		return append(errs, field.Required(path.Child("key"), ""))
	}
	for _, msg := range validation.IsConfigMapKey(key) {
		errs = append(errs, field.Invalid(path.Child("key"), key, msg))
	}
	return errs
}

// validateFieldSelector checks a downward API fieldRef against the paths
// allowed where it appears; labels and annotations may be subscripted.
func validateFieldSelector(fs *corev1.ObjectFieldSelector, allowed []string, path *field.Path) field.ErrorList {
	if fs.APIVersion == "" {
		return field.ErrorList{field.Required(path.Child("apiVersion"), "")}
	}
	if fs.FieldPath == "" {
		return field.ErrorList{field.Required(path.Child("fieldPath"), "")}
	}
	if fs.APIVersion != "v1" {
		return field.ErrorList{field.Invalid(path.Child("fieldPath"), fs.FieldPath,
			fmt.Sprintf("error converting fieldPath: unsupported pod version: %s", fs.APIVersion))}
	}
	if base, subscript, ok := strings.Cut(fs.FieldPath, "['"); ok && strings.HasSuffix(subscript, "']") {
		key := strings.TrimSuffix(subscript, "']")
		switch base {
		case "metadata.annotations":
			return validateQualifiedName(strings.ToLower(key), path)
		case "metadata.labels":
			return validateQualifiedName(key, path)
		}
		return field.ErrorList{field.Invalid(path, base, "does not support subscript")}
	}
	if !slices.Contains(allowed, fs.FieldPath) {
		return field.ErrorList{field.NotSupported(path.Child("fieldPath"), fs.FieldPath, allowed)}
	}
	return nil
}

func validateResourceFieldSelector(fs *corev1.ResourceFieldSelector, inVolume bool, path *field.Path) field.ErrorList {
	switch {
	case inVolume && fs.ContainerName == "":
		return field.ErrorList{field.Required(path.Child("containerName"), "")}
	case fs.Resource == "":
		return field.ErrorList{field.Required(path.Child("resource"), "")}
	case !slices.Contains(resourceFieldPaths, fs.Resource) &&
		!strings.HasPrefix(fs.Resource, "requests.hugepages-") && !strings.HasPrefix(fs.Resource, "limits.hugepages-"):
		return field.ErrorList{field.NotSupported(path.Child("resource"), fs.Resource, resourceFieldPaths)}
	}
	return nil
}

// validateVolumes checks the pod's volumes and returns the valid ones by
// name, for mounts to refer to.
func validateVolumes(volumes []corev1.Volume, path *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	vols := make(map[string]corev1.VolumeSource)
	for i, v := range volumes {
		p := path.Index(i)
		volErrs := validateVolumeSource(&v.VolumeSource, p)
		if v.Name == "" {
			volErrs = append(volErrs, field.Required(p.Child("name"), ""))
		} else {
			volErrs = append(volErrs, validateName(v.Name, nameIsDNSLabel, p.Child("name"))...)
		}
		if _, dup := vols[v.Name]; dup {
			volErrs = append(volErrs, field.Duplicate(p.Child("name"), v.Name))
		}
		if len(volErrs) == 0 {
			vols[v.Name] = v.VolumeSource
		}
		errs = append(errs, volErrs...)
	}
	return vols, errs
}

// validateVolumeSource requires exactly one source and checks the common ones.
func validateVolumeSource(vs *corev1.VolumeSource, path *field.Path) field.ErrorList {
	set := setFields(*vs)
	if len(set) == 0 {
		return field.ErrorList{field.Required(path, "must specify a volume type")}
	}
	// Kubernetes counts emptyDir first, so it is the one kept when another
	// source is added by mistake.
	if i := slices.Index(set, "emptyDir"); i > 0 {
		set = slices.Concat([]string{"emptyDir"}, slices.Delete(slices.Clone(set), i, i+1))
	}
	var errs field.ErrorList
	for _, extra := range set[1:] {
		errs = append(errs, field.Forbidden(path.Child(extra), "may not specify more than 1 volume type"))
	}
	if len(errs) > 0 {
		return errs
	}
	p := path.Child(set[0])
	switch {
	case vs.EmptyDir != nil:
		if l := vs.EmptyDir.SizeLimit; l != nil && l.Sign() < 0 {
			errs = append(errs, field.Forbidden(p.Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
		}
	case vs.HostPath != nil:
		errs = append(errs, validateHostPath(vs.HostPath, p)...)
	case vs.Secret != nil:
		if vs.Secret.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secretName"), ""))
		}
		errs = append(errs, validateFileMode(vs.Secret.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(vs.Secret.Items, p.Child("items"))...)
	case vs.ConfigMap != nil:
		if vs.ConfigMap.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		errs = append(errs, validateFileMode(vs.ConfigMap.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(vs.ConfigMap.Items, p.Child("items"))...)
	case vs.PersistentVolumeClaim != nil:
		if vs.PersistentVolumeClaim.ClaimName == "" {
			errs = append(errs, field.Required(p.Child("claimName"), ""))
		}
	case vs.DownwardAPI != nil:
		errs = append(errs, validateFileMode(vs.DownwardAPI.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateDownwardAPIItems(vs.DownwardAPI.Items, p.Child("items"))...)
	case vs.Projected != nil:
		errs = append(errs, validateProjected(vs.Projected, p)...)
	case vs.NFS != nil:
		errs = append(errs, validateNFS(vs.NFS, p)...)
	case vs.CSI != nil:
		if vs.CSI.Driver == "" {
			errs = append(errs, field.Required(p.Child("driver"), ""))
		}
	case vs.Ephemeral != nil:
		if vs.Ephemeral.VolumeClaimTemplate == nil {
			errs = append(errs, field.Required(p.Child("volumeClaimTemplate"), ""))
		} else {
			errs = append(errs, validatePersistentVolumeClaimSpec(&vs.Ephemeral.VolumeClaimTemplate.Spec, p.Child("volumeClaimTemplate", "spec"))...)
		}
	case vs.Image != nil:
		if vs.Image.Reference == "" {
			errs = append(errs, field.Required(p.Child("reference"), ""))
		}
		errs = append(errs, validateOptionalOneOf(p.Child("pullPolicy"), vs.Image.PullPolicy,
			corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	case vs.GitRepo != nil:
		if vs.GitRepo.Repository == "" {
			errs = append(errs, field.Required(p.Child("repository"), ""))
		}
		errs = append(errs, validateLocalDescendingPath(vs.GitRepo.Directory, p.Child("directory"))...)
	case vs.ISCSI != nil:
		if vs.ISCSI.TargetPortal == "" {
			errs = append(errs, field.Required(p.Child("targetPortal"), ""))
		}
		if vs.ISCSI.IQN == "" {
			errs = append(errs, field.Required(p.Child("iqn"), ""))
		}
		if vs.ISCSI.Lun < 0 || vs.ISCSI.Lun > 255 {
			errs = append(errs, field.Invalid(p.Child("lun"), vs.ISCSI.Lun, validation.InclusiveRangeError(0, 255)))
		}
	}
	return errs
}

var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
	corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

func validateHostPath(hp *corev1.HostPathVolumeSource, path *field.Path) field.ErrorList {
	if hp.Path == "" {
		return field.ErrorList{field.Required(path.Child("path"), "")}
	}
	errs := validatePathNoBacksteps(hp.Path, path.Child("path"))
	if hp.Type != nil && !slices.Contains(hostPathTypes, *hp.Type) {
		errs = append(errs, field.NotSupported(path.Child("type"), *hp.Type, hostPathTypes))
	}
	return errs
}

func validateNFS(nfs *corev1.NFSVolumeSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if nfs.Server == "" {
		errs = append(errs, field.Required(path.Child("server"), ""))
	}
	if nfs.Path == "" {
		errs = append(errs, field.Required(path.Child("path"), ""))
	} else if !strings.HasPrefix(nfs.Path, "/") {
		errs = append(errs, field.Invalid(path.Child("path"), nfs.Path, "must be an absolute path"))
	}
	return errs
}

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

func validateFileMode(mode *int32, path *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(path, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, item := range items {
		p := path.Index(i)
		if item.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		}
		if item.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validateLocalNonReservedPath(item.Path, p.Child("path"))...)
		errs = append(errs, validateFileMode(item.Mode, p.Child("mode"))...)
	}
	return errs
}

func validateDownwardAPIItems(items []corev1.DownwardAPIVolumeFile, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, item := range items {
		p := path.Index(i)
		if item.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validateLocalNonReservedPath(item.Path, p.Child("path"))...)
		errs = append(errs, validateFileMode(item.Mode, p.Child("mode"))...)
		switch {
		case item.FieldRef != nil && item.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case item.FieldRef != nil:
			errs = append(errs, validateFieldSelector(item.FieldRef, volumeFieldPaths, p.Child("fieldRef"))...)
		case item.ResourceFieldRef != nil:
			errs = append(errs, validateResourceFieldSelector(item.ResourceFieldRef, true, p.Child("resourceFieldRef"))...)
		}
	}
	return errs
}

func validateProjected(pv *corev1.ProjectedVolumeSource, path *field.Path) field.ErrorList {
	errs := validateFileMode(pv.DefaultMode, path.Child("defaultMode"))
	paths := sets.New[string]()
	addPath := func(file string, p *field.Path) {
		if paths.Has(file) {
			errs = append(errs, field.Invalid(p, file, "conflicting duplicate paths"))
		}
		paths.Insert(file)
	}
	for i, src := range pv.Sources {
		p := path.Child("sources").Index(i)
		set := setFields(src)
		if len(set) == 0 {
			errs = append(errs, field.Required(p, "must specify exactly 1 of configMap, downwardAPI, secret, serviceAccountToken, clusterTrustBundle, podCertificate"))
			continue
		}
		for _, extra := range set[1:] {
			errs = append(errs, field.Forbidden(p.Child(extra), "may not specify more than 1 volume type per source"))
		}
		switch {
		case src.Secret != nil:
			errs = append(errs, validateKeyToPaths(src.Secret.Items, p.Child("secret", "items"))...)
			for j, item := range src.Secret.Items {
				addPath(item.Path, p.Child("secret", "items").Index(j).Child("path"))
			}
		case src.ConfigMap != nil:
			errs = append(errs, validateKeyToPaths(src.ConfigMap.Items, p.Child("configMap", "items"))...)
			for j, item := range src.ConfigMap.Items {
				addPath(item.Path, p.Child("configMap", "items").Index(j).Child("path"))
			}
		case src.DownwardAPI != nil:
			errs = append(errs, validateDownwardAPIItems(src.DownwardAPI.Items, p.Child("downwardAPI", "items"))...)
			for j, item := range src.DownwardAPI.Items {
				addPath(item.Path, p.Child("downwardAPI", "items").Index(j).Child("path"))
			}
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			tp := p.Child("serviceAccountToken")
			if t.ExpirationSeconds != nil {
				switch {
				case *t.ExpirationSeconds < 600:
					errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
				case *t.ExpirationSeconds > 1<<32:
					errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration larger than 2^32 seconds"))
				}
			}
			if t.Path == "" {
				errs = append(errs, field.Required(tp.Child("path"), ""))
			} else {
				errs = append(errs, validateLocalNonReservedPath(t.Path, tp.Child("path"))...)
				addPath(t.Path, tp.Child("path"))
			}
		}
	}
	return errs
}

// validateLocalDescendingPath requires a relative path that stays below its
// root.
func validateLocalDescendingPath(target string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if strings.HasPrefix(target, "/") {
		errs = append(errs, field.Invalid(path, target, "must be a relative path"))
	}
	return append(errs, validatePathNoBacksteps(target, path)...)
}

// validateLocalNonReservedPath is validateLocalDescendingPath that also keeps
// names starting with ".." free for the kubelet's atomic writer.
func validateLocalNonReservedPath(target string, path *field.Path) field.ErrorList {
	errs := validateLocalDescendingPath(target, path)
	if strings.HasPrefix(target, "..") && !strings.HasPrefix(target, "../") {
		errs = append(errs, field.Invalid(path, target, "must not start with '..'"))
	}
	return errs
}

func validatePathNoBacksteps(target string, path *field.Path) field.ErrorList {
	for part := range strings.SplitSeq(strings.ReplaceAll(target, `\`, "/"), "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(path, target, "must not contain '..'")}
		}
	}
	return nil
}

var mountPropagationModes = []corev1.MountPropagationMode{
	corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone,
}

// validateVolumeMounts requires each mount to name a volume of the pod and a
// unique path.
func validateVolumeMounts(c *corev1.Container, vols map[string]corev1.VolumeSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountPaths := sets.New[string]()
	devices := make(map[string]string)
	for _, d := range c.VolumeDevices {
		devices[d.Name] = d.DevicePath
	}
	for i, m := range c.VolumeMounts {
		p := path.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if _, ok := vols[m.Name]; !ok {
			errs = append(errs, field.NotFound(p.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(p.Child("mountPath"), ""))
		}
		if mountPaths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths.Insert(m.MountPath)
		if _, ok := devices[m.Name]; ok {
			errs = append(errs, field.Invalid(p.Child("name"), m.Name, "must not already exist in volumeDevices"))
		}
		if slices.Contains(mapValues(devices), m.MountPath) {
			errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must not already exist as a path in volumeDevices"))
		}
		if v, ok := vols[m.Name]; ok && v.Image != nil {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(p.Child("subPath"), m.SubPath, "not allowed in image volume sources"))
			}
			if m.SubPathExpr != "" {
				errs = append(errs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "not allowed in image volume sources"))
			}
		}
		if m.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(m.SubPath, p.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalDescendingPath(m.SubPathExpr, p.Child("subPathExpr"))...)
		}
		if m.MountPropagation != nil {
			mp := p.Child("mountPropagation")
			errs = append(errs, validateOneOf(mp, *m.MountPropagation, mountPropagationModes...)...)
			privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
			if *m.MountPropagation == corev1.MountPropagationBidirectional && !privileged {
				errs = append(errs, field.Forbidden(mp, "Bidirectional mount propagation is available only to privileged containers"))
			}
		}
		if m.RecursiveReadOnly != nil {
			rp := p.Child("recursiveReadOnly")
			errs = append(errs, validateOneOf(rp, *m.RecursiveReadOnly,
				corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled)...)
			if *m.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled {
				if !m.ReadOnly {
					errs = append(errs, field.Forbidden(rp, "may only be specified when readOnly is true"))
				}
				if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
					errs = append(errs, field.Forbidden(rp, "may only be specified when mountPropagation is None or not specified"))
				}
			}
		}
	}
	return errs
}

// validateVolumeDevices requires raw block devices to come from claims.
func validateVolumeDevices(c *corev1.Container, vols map[string]corev1.VolumeSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names, paths := sets.New[string](), sets.New[string]()
	for i, d := range c.VolumeDevices {
		p := path.Index(i)
		if d.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if names.Has(d.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), d.Name, "must be unique"))
		}
		if v, ok := vols[d.Name]; !ok {
			errs = append(errs, field.NotFound(p.Child("name"), d.Name))
		} else if v.PersistentVolumeClaim == nil && v.Ephemeral == nil {
			errs = append(errs, field.Invalid(p.Child("name"), d.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if d.DevicePath == "" {
			errs = append(errs, field.Required(p.Child("devicePath"), ""))
		}
		if paths.Has(d.DevicePath) {
			errs = append(errs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must be unique"))
		}
		if len(validatePathNoBacksteps(d.DevicePath, p)) > 0 {
			errs = append(errs, field.Invalid(p.Child("devicePath"), d.DevicePath, "can not contain backsteps ('..')"))
		}
		names.Insert(d.Name)
		paths.Insert(d.DevicePath)
	}
	return errs
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// validateResourceRequirements checks resource names and quantities, and
// that requests do not exceed limits (or equal them, for resources that
// cannot be overcommitted, such as hugepages and extended resources).
func validateResourceRequirements(r *corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	limPath, reqPath := path.Child("limits"), path.Child("requests")
	errs := validateResourceList(r.Limits, limPath)
	errs = append(errs, validateResourceList(r.Requests, reqPath)...)
	for _, name := range sortedResourceNames(r.Requests) {
		req := r.Requests[name]
		lim, ok := r.Limits[name]
		switch {
		case ok && !overcommitAllowed(name) && req.Cmp(lim) != 0:
			errs = append(errs, field.Invalid(reqPath, req.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
		case ok && req.Cmp(lim) > 0:
			errs = append(errs, field.Invalid(reqPath, req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		case !ok && !overcommitAllowed(name):
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
	}
	claims := sets.New[string]()
	for i, c := range r.Claims {
		p := path.Child("claims").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else if claims.Has(c.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		claims.Insert(c.Name)
	}
	return errs
}

// validateResourceList checks the names and quantities of container resources.
func validateResourceList(rl corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedResourceNames(rl) {
		q := rl[name]
		p := path.Key(string(name))
		errs = append(errs, validateContainerResourceName(name, p)...)
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(p, q.String(), "must be greater than or equal to 0"))
		}
		if !isNativeResource(name) && q.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(p, q.String(), "must be an integer"))
		}
	}
	return errs
}

func sortedResourceNames(rl corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(rl))
	for name := range rl {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// validateContainerResourceName accepts the standard resources (cpu, memory,
// ephemeral-storage, hugepages-*) and domain-qualified extended resources.
func validateContainerResourceName(name corev1.ResourceName, path *field.Path) field.ErrorList {
	errs := validateQualifiedName(string(name), path)
	if len(errs) > 0 {
		return errs
	}
	if !strings.Contains(string(name), "/") {
		switch {
		case name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
			strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
		default:
			errs = append(errs, field.Invalid(path, name, "must be a standard resource for containers"))
		}
		return errs
	}
	if !isNativeResource(name) && len(validation.IsQualifiedName("requests."+string(name))) > 0 {
		errs = append(errs, field.Invalid(path, name, "doesn't follow extended resource name standard"))
	}
	return errs
}

// isNativeResource is true for Kubernetes' own resources: unprefixed or in a
// kubernetes.io domain.
func isNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), corev1.ResourceDefaultNamespacePrefix)
}

// overcommitAllowed is false for resources whose request must equal their
// limit: hugepages and extended resources.
func overcommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// validateSecurityContext checks a container's security context.
func validateSecurityContext(sc *corev1.SecurityContext, path *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	errs := validateIDs(sc.RunAsUser, sc.RunAsGroup, path)
	if sc.ProcMount != nil {
		errs = append(errs, validateOneOf(path.Child("procMount"), *sc.ProcMount, corev1.DefaultProcMount, corev1.UnmaskedProcMount)...)
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, field.Invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
		if sc.Capabilities != nil && slices.Contains(sc.Capabilities.Add, "CAP_SYS_ADMIN") {
			errs = append(errs, field.Invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
		}
	}
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, path.Child("seccompProfile"))...)
	return errs
}

func validatePodSecurityContext(sc *corev1.PodSecurityContext, path *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	errs := validateIDs(sc.RunAsUser, sc.RunAsGroup, path)
	if sc.FSGroup != nil {
		for _, msg := range validation.IsValidGroupID(*sc.FSGroup) {
			errs = append(errs, field.Invalid(path.Child("fsGroup"), *sc.FSGroup, msg))
		}
	}
	for i, g := range sc.SupplementalGroups {
		for _, msg := range validation.IsValidGroupID(g) {
			errs = append(errs, field.Invalid(path.Child("supplementalGroups").Index(i), g, msg))
		}
	}
	if sc.FSGroupChangePolicy != nil {
		errs = append(errs, validateOneOf(path.Child("fsGroupChangePolicy"), *sc.FSGroupChangePolicy,
			corev1.FSGroupChangeAlways, corev1.FSGroupChangeOnRootMismatch)...)
	}
	names := sets.New[string]()
	for i, s := range sc.Sysctls {
		p := path.Child("sysctls").Index(i).Child("name")
		if s.Name == "" {
			errs = append(errs, field.Required(p, ""))
		} else if names.Has(s.Name) {
			errs = append(errs, field.Duplicate(p, s.Name))
		}
		names.Insert(s.Name)
	}
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, path.Child("seccompProfile"))...)
	return errs
}

func validateIDs(user, group *int64, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if user != nil {
		for _, msg := range validation.IsValidUserID(*user) {
			errs = append(errs, field.Invalid(path.Child("runAsUser"), *user, msg))
		}
	}
	if group != nil {
		for _, msg := range validation.IsValidGroupID(*group) {
			errs = append(errs, field.Invalid(path.Child("runAsGroup"), *group, msg))
		}
	}
	return errs
}

func validateSeccompProfile(sp *corev1.SeccompProfile, path *field.Path) field.ErrorList {
	if sp == nil {
		return nil
	}
	errs := validateOneOf(path.Child("type"), sp.Type,
		corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined)
	switch {
	case sp.Type == corev1.SeccompProfileTypeLocalhost && sp.LocalhostProfile == nil:
		errs = append(errs, field.Required(path.Child("localhostProfile"), "must be set when seccomp type is Localhost"))
	case sp.Type == corev1.SeccompProfileTypeLocalhost:
		errs = append(errs, validateLocalDescendingPath(*sp.LocalhostProfile, path.Child("localhostProfile"))...)
	case sp.LocalhostProfile != nil:
		errs = append(errs, field.Invalid(path.Child("localhostProfile"), sp, "can only be set when seccomp type is Localhost"))
	}
	return errs
}

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

func validateTolerations(tolerations []corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		p := path.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Operator,
				"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(p.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
				errs = append(errs, field.Invalid(p.Child("operator"), t.Value, strings.Join(msgs, ";")))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(p.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator,
				[]corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		errs = append(errs, validateOptionalOneOf(p.Child("effect"), t.Effect, taintEffects...)...)
	}
	return errs
}

const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

func validateDNSConfig(cfg *corev1.PodDNSConfig, policy corev1.DNSPolicy, path *field.Path) field.ErrorList {
	if policy == corev1.DNSNone {
		if cfg == nil {
			return field.ErrorList{field.Required(path, fmt.Sprintf("must provide `dnsConfig` when `dnsPolicy` is %s", corev1.DNSNone))}
		}
		if len(cfg.Nameservers) == 0 {
			return field.ErrorList{field.Required(path.Child("nameservers"),
				fmt.Sprintf("must provide at least one DNS nameserver when `dnsPolicy` is %s", corev1.DNSNone))}
		}
	}
	if cfg == nil {
		return nil
	}
	var errs field.ErrorList
	if len(cfg.Nameservers) > maxDNSNameservers {
		errs = append(errs, field.Invalid(path.Child("nameservers"), cfg.Nameservers,
			fmt.Sprintf("must not have more than %v nameservers", maxDNSNameservers)))
	}
	for i, ns := range cfg.Nameservers {
		errs = append(errs, validation.IsValidIP(path.Child("nameservers").Index(i), ns)...)
	}
	if len(cfg.Searches) > maxDNSSearchPaths {
		errs = append(errs, field.Invalid(path.Child("searches"), cfg.Searches,
			fmt.Sprintf("must not have more than %v search paths", maxDNSSearchPaths)))
	}
	if len(strings.Join(cfg.Searches, " ")) > maxDNSSearchListChars {
		errs = append(errs, field.Invalid(path.Child("searches"), cfg.Searches,
			fmt.Sprintf("must not have more than %v characters (including spaces) in the search list", maxDNSSearchListChars)))
	}
	for i, s := range cfg.Searches {
		if s == "." {
			continue
		}
		s = strings.TrimSuffix(s, ".")
		for _, msg := range validation.IsDNS1123SubdomainWithUnderscore(s) {
			errs = append(errs, field.Invalid(path.Child("searches").Index(i), s, msg))
		}
	}
	for i, o := range cfg.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(path.Child("options").Index(i), "must not be empty"))
		}
	}
	return errs
}

func validateTopologySpread(constraints []corev1.TopologySpreadConstraint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, c := range constraints {
		p := path.Index(i)
		if c.MaxSkew <= 0 {
			errs = append(errs, field.Invalid(p.Child("maxSkew"), c.MaxSkew, "must be greater than zero"))
		}
		if c.TopologyKey == "" {
			errs = append(errs, field.Required(p.Child("topologyKey"), "can not be empty"))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(c.TopologyKey, p.Child("topologyKey"))...)
		}
		errs = append(errs, validateOneOf(p.Child("whenUnsatisfiable"), c.WhenUnsatisfiable,
			corev1.DoNotSchedule, corev1.ScheduleAnyway)...)
		key := c.TopologyKey + "/" + string(c.WhenUnsatisfiable)
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("{%v, %v}", c.TopologyKey, c.WhenUnsatisfiable)))
		}
		seen.Insert(key)
		if c.MinDomains != nil {
			if *c.MinDomains <= 0 {
				errs = append(errs, field.Invalid(p.Child("minDomains"), *c.MinDomains, "must be greater than 0"))
			} else if c.WhenUnsatisfiable != corev1.DoNotSchedule {
				errs = append(errs, field.Invalid(p.Child("minDomains"), *c.MinDomains,
					fmt.Sprintf("can only use minDomains if whenUnsatisfiable=%s, not %s", corev1.DoNotSchedule, c.WhenUnsatisfiable)))
			}
		}
		errs = append(errs, metav1validation.ValidateLabelSelector(c.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("labelSelector"))...)
	}
	return errs
}

func validateAffinity(a *corev1.Affinity, path *field.Path) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	if na := a.NodeAffinity; na != nil {
		np := path.Child("nodeAffinity")
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			rp := np.Child("requiredDuringSchedulingIgnoredDuringExecution")
			if len(req.NodeSelectorTerms) == 0 {
				errs = append(errs, field.Required(rp.Child("nodeSelectorTerms"), "must have at least one node selector term"))
			}
			for i, term := range req.NodeSelectorTerms {
				errs = append(errs, validateNodeSelectorTerm(term, rp.Child("nodeSelectorTerms").Index(i))...)
			}
		}
		for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			p := np.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
			if pref.Weight <= 0 || pref.Weight > 100 {
				errs = append(errs, field.Invalid(p.Child("weight"), pref.Weight, "must be in the range 1-100"))
			}
			errs = append(errs, validateNodeSelectorTerm(pref.Preference, p.Child("preference"))...)
		}
	}
	if pa := a.PodAffinity; pa != nil {
		errs = append(errs, validatePodAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution,
			pa.PreferredDuringSchedulingIgnoredDuringExecution, path.Child("podAffinity"))...)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		errs = append(errs, validatePodAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution,
			pa.PreferredDuringSchedulingIgnoredDuringExecution, path.Child("podAntiAffinity"))...)
	}
	return errs
}

func validatePodAffinityTerms(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range required {
		errs = append(errs, validatePodAffinityTerm(t, path.Child("requiredDuringSchedulingIgnoredDuringExecution").Index(i))...)
	}
	for i, t := range preferred {
		p := path.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if t.Weight <= 0 || t.Weight > 100 {
			errs = append(errs, field.Invalid(p.Child("weight"), t.Weight, "must be in the range 1-100"))
		}
		errs = append(errs, validatePodAffinityTerm(t.PodAffinityTerm, p.Child("podAffinityTerm"))...)
	}
	return errs
}

func validatePodAffinityTerm(t corev1.PodAffinityTerm, path *field.Path) field.ErrorList {
	opts := metav1validation.LabelSelectorValidationOptions{}
	errs := metav1validation.ValidateLabelSelector(t.LabelSelector, opts, path.Child("labelSelector"))
	errs = append(errs, metav1validation.ValidateLabelSelector(t.NamespaceSelector, opts, path.Child("namespaceSelector"))...)
	for _, ns := range t.Namespaces {
		errs = append(errs, validateName(ns, nameIsDNSLabel, path.Child("namespace"))...)
	}
	if t.TopologyKey == "" {
		return append(errs, field.Required(path.Child("topologyKey"), "can not be empty"))
	}
	return append(errs, metav1validation.ValidateLabelName(t.TopologyKey, path.Child("topologyKey"))...)
}

var nodeSelectorOperators = []corev1.NodeSelectorOperator{
	corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpExists, corev1.NodeSelectorOpGt,
	corev1.NodeSelectorOpIn, corev1.NodeSelectorOpLt, corev1.NodeSelectorOpNotIn,
}

func validateNodeSelectorTerm(term corev1.NodeSelectorTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range term.MatchExpressions {
		p := path.Child("matchExpressions").Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(r.Key, p.Child("key"))...)
		errs = append(errs, validateNodeSelectorValues(r.Operator, r.Values, p)...)
	}
	for i, r := range term.MatchFields {
		p := path.Child("matchFields").Index(i)
		if r.Key != "metadata.name" {
			errs = append(errs, field.NotSupported(p.Child("key"), r.Key, []string{"metadata.name"}))
		}
		if r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn {
			errs = append(errs, field.NotSupported(p.Child("operator"), r.Operator,
				[]corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn}))
		} else if len(r.Values) != 1 {
			errs = append(errs, field.Required(p.Child("values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
		}
	}
	return errs
}

func validateNodeSelectorValues(op corev1.NodeSelectorOperator, values []string, path *field.Path) field.ErrorList {
	switch op {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(values) == 0 {
			return field.ErrorList{field.Required(path.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'")}
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(values) > 0 {
			return field.ErrorList{field.Forbidden(path.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")}
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(values) != 1 {
			return field.ErrorList{field.Required(path.Child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'")}
		}
	default:
		return field.ErrorList{field.NotSupported(path.Child("operator"), op, nodeSelectorOperators)}
	}
	var errs field.ErrorList
	for j, v := range values {
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(path.Child("values").Index(j), v, msg))
		}
	}
	return errs
}
