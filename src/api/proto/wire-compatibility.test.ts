import { describe, it, expect } from "vitest";
import { createRequire } from "node:module";
import protobuf from "protobufjs";
import { etcdProtoRoot } from "../protobuf/reflection-codecs.js";

// The etcd3 npm client ships its own copy of etcd's .proto files: every field
// and method it knows must exist in ours with the same number, type, label and
// streaming mode, or that client would misread our bytes.
const theirsPath = createRequire(import.meta.url).resolve("etcd3/proto/rpc.proto");
const theirs = protobuf.loadSync(theirsPath);
theirs.resolveAll();
const ours = etcdProtoRoot();

function allTypes(namespace: protobuf.NamespaceBase): protobuf.Type[] {
  return namespace.nestedArray.flatMap((nested) => {
    const inner = nested instanceof protobuf.Namespace ? allTypes(nested) : [];
    return nested instanceof protobuf.Type ? [nested, ...inner] : inner;
  });
}

function allServices(namespace: protobuf.NamespaceBase): protobuf.Service[] {
  return namespace.nestedArray.flatMap((nested) => {
    if (nested instanceof protobuf.Service) return [nested];
    return nested instanceof protobuf.Namespace ? allServices(nested) : [];
  });
}

const describeField = (field: protobuf.Field): string =>
  `${field.id} ${field.repeated ? "repeated " : ""}${field.resolvedType ? field.resolvedType.fullName : field.type}${field.partOf ? ` oneof ${field.partOf.name}` : ""}`;

describe("our etcd .proto files", () => {
  const theirTypes = allTypes(theirs);

  it("declare every message the etcd3 client knows", () => {
    expect(theirTypes.length).toBeGreaterThan(90);
    const missing = theirTypes.filter((type) => ours.lookup(type.fullName) === null).map((type) => type.fullName);
    expect(missing).toEqual([]);
  });

  it("give every field the etcd3 client knows the same number, type, label and oneof", () => {
    const mismatches: string[] = [];
    for (const type of theirTypes) {
      const mine = ours.lookupType(type.fullName);
      for (const field of type.fieldsArray) {
        const match = mine.fields[field.name];
        const expected = describeField(field);
        const actual = match ? describeField(match) : "missing";
        if (expected !== actual) mismatches.push(`${type.fullName}.${field.name}: theirs ${expected}, ours ${actual}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("give every enum the same numbers", () => {
    const mismatches: string[] = [];
    const theirEnums = (namespace: protobuf.NamespaceBase): protobuf.Enum[] =>
      namespace.nestedArray.flatMap((nested) => (nested instanceof protobuf.Enum ? [nested] : nested instanceof protobuf.Namespace ? theirEnums(nested) : []));
    for (const theirEnum of theirEnums(theirs)) {
      const mine = ours.lookupEnum(theirEnum.fullName);
      const numbers = (values: Record<string, number>): number[] => Object.values(values).sort((a, b) => a - b);
      if (JSON.stringify(numbers(mine.values)) !== JSON.stringify(numbers(theirEnum.values))) mismatches.push(theirEnum.fullName);
    }
    expect(mismatches).toEqual([]);
  });

  it("declare every RPC with the same request, response and streaming", () => {
    const mismatches: string[] = [];
    for (const service of allServices(theirs)) {
      const mine = ours.lookupService(service.fullName);
      for (const method of service.methodsArray) {
        const match = mine.methods[method.name];
        const shape = (candidate: protobuf.Method | undefined): string =>
          candidate ? `${candidate.resolvedRequestType?.fullName} ${candidate.requestStream ? "stream" : ""} -> ${candidate.resolvedResponseType?.fullName} ${candidate.responseStream ? "stream" : ""}` : "missing";
        if (shape(method) !== shape(match)) mismatches.push(`${service.fullName}/${method.name}: theirs ${shape(method)}, ours ${shape(match)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });
});
