-- Orthanc routes every CR and DX film it receives to the AI node (the modality "cxr-ai" of its
-- configuration). The node's results (SR, SC) are other modalities, so they are never routed back.
function OnStoredInstance(instanceId, tags, metadata, origin)
  local modality = tags['Modality']
  if modality == 'CR' or modality == 'DX' then
    SendToModality(instanceId, 'cxr-ai')
  end
end
